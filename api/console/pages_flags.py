"""The flags screen: the cooperative's plausibility flags, newest first, as the API's
`GET /v1/flags` gives them (a tree's season far above its typical yield, a harvest before
the tree was planted, a tree outside its plot)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from coffeetrace.api import routes_lots
from coffeetrace.api.console import web
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn

router = APIRouter(route_class=web.ConsoleRoute)


@router.get("/flags")
def flags(request: Request, conn: Conn, session: Viewer) -> Response:
    rows = routes_lots.cooperative_flags(
        conn, session.caller, limit=min(web.settings_of(request).console_page_rows, 500)
    )
    return web.page(request, "flags.html", flags=rows)
