"""All of the console's routes under /console, added to the app by `install`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from coffeetrace.api.console import (
    pages_auth,
    pages_flags,
    pages_harvests,
    pages_keys,
    pages_lots,
    pages_today,
    pages_users,
    web,
)


def install(app: FastAPI) -> None:
    """Add the console's routes (kept out of the OpenAPI document: they answer HTML)."""
    router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
    for part in (
        pages_auth,
        pages_today,
        pages_harvests,
        pages_lots,
        pages_flags,
        pages_users,
        pages_keys,
    ):
        router.include_router(part.router)
    app.include_router(router)
