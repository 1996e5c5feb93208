"""The API keys screen (admins): the cooperative's keys for machines, issuing one (its
token shown once, on the page that answers the form) and revoking one, through the API's
handlers (`/v1/api-keys`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError

from coffeetrace.api import routes_registry
from coffeetrace.api.console import forms, messages, web
from coffeetrace.api.console.sessions import Session
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.api.schemas import ApiKeyIn
from coffeetrace.errors import CoffeetraceError

router = APIRouter(route_class=web.ConsoleRoute)
FormText = Annotated[str, Form(max_length=200)]
KEYS_SHOWN = 500  # the API's page limit


def _page(
    request: Request,
    conn: Conn,
    session: Session,
    *,
    token: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    found = routes_registry.list_api_keys(conn, session.caller, limit=KEYS_SHOWN, cursor=None)
    return web.page(
        request,
        "keys.html",
        status_code=status_code,
        keys=found["items"],
        token=token,
        error=error,
        roles=("admin", "operator", "read-only"),
    )


@router.get("/keys")
def keys(request: Request, conn: Conn, session: Viewer) -> Response:
    session.caller.require("admin")
    return _page(request, conn, session)


@router.post("/keys")
def issue_key(
    request: Request,
    conn: Conn,
    session: Viewer,
    csrf: FormText = "",
    role: FormText = "",
    name: FormText = "",
) -> Response:
    session.check_csrf(csrf)
    session.caller.require("admin")
    try:
        try:
            body = ApiKeyIn.model_validate({"role": role, "name": name.strip()})
        except ValidationError as exc:
            raise forms.schema_error(exc) from None
        issued = routes_registry.create_api_key(body, conn, session.caller)
    except CoffeetraceError as exc:
        return _page(
            request,
            conn,
            session,
            error=messages.translate(exc, web.lang_of(request)),
            status_code=exc.status_code,
        )
    # shown on this answer only (no-store); a reload does not show it again
    return _page(request, conn, session, token=issued.token, status_code=201)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: UUID, request: Request, conn: Conn, session: Viewer, csrf: FormText = ""
) -> Response:
    session.check_csrf(csrf)
    session.caller.require("admin")
    routes_registry.revoke_api_key(key_id, conn, session.caller)
    return web.redirect(f"{web.PREFIX}/keys")
