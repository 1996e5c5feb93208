"""The Harvests screen: harvests filtered by date, plot, farm and device, those still
unassigned, and building a cherry lot from the ones selected.

The list is the API's `GET /v1/harvests` and the lot is built by the API's
`POST /v1/lots` (the same handler functions, with the user as the caller), so tenancy,
roles and the lot rules are the API's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response
from pydantic import ValidationError

from coffeetrace.api import routes_harvests, routes_lots
from coffeetrace.api.console import forms, messages, web
from coffeetrace.api.console.sessions import Session
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.api.schemas import CherryLotIn
from coffeetrace.errors import CoffeetraceError
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "console_pages.sql")
router = APIRouter(route_class=web.ConsoleRoute)
FILTERS = ("from", "to", "plot", "farm", "device", "unassigned")
MAX_SELECTED = 5000  # harvests one form may name (the API's body allows far more)


def _filters(source: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(source.get(k) or "")[:200] for k in FILTERS}


def _list(conn: Conn, session: Session, zone: ZoneInfo, f: dict[str, str], rows: int) -> dict:
    since = forms.day_start(forms.day(f["from"], "from"), zone)
    until = forms.day_start(forms.day(f["to"], "to"), zone, next_day=True)
    return routes_harvests.list_harvests(
        conn,
        session.caller,
        limit=rows,
        cursor=None,
        plot_id=forms.uuid(f["plot"], "plot"),
        tree_id=None,
        farm_id=forms.uuid(f["farm"], "farm"),
        device_id=forms.text(f["device"], "device", 200),
        since=since,
        until=until,
        unassigned=True if f["unassigned"] else None,
    )


def _page(
    request: Request,
    conn: Conn,
    session: Session,
    f: dict[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
    selected: frozenset[str] = frozenset(),
    code: str = "",
) -> Response:
    settings = web.settings_of(request)
    found = _list(
        conn, session, ZoneInfo(settings.console_time_zone), f, settings.console_page_rows
    )
    choices: dict[str, list[dict[str, Any]]] = {"farm": [], "plot": [], "device": []}
    for row in conn.execute(
        SQL["console_filter_choices"], {"cooperative_id": session.cooperative_id}
    ).fetchall():
        choices[row["kind"]].append(row)
    items = found["items"]
    return web.page(
        request,
        "harvests.html",
        status_code=status_code,
        harvests=items,
        more=found["next_cursor"] is not None,
        total_kg=sum(h["cherry_kg"] for h in items),
        remaining_kg=sum(h["remaining_kg"] for h in items),
        filters=f,
        choices=choices,
        error=error,
        selected=selected,
        code=code,
        can_write=session.role != "read-only",
    )


@router.get("/harvests")
def harvests(request: Request, conn: Conn, session: Viewer) -> Response:
    return _page(request, conn, session, _filters(request.query_params))


@router.post("/harvests/lot")
def build_lot(
    request: Request,
    conn: Conn,
    session: Viewer,
    csrf: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=200)] = "",
    harvest_id: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    session.check_csrf(csrf)
    session.caller.require("operator")
    f = _filters(dict(parse_qsl(back)))
    background = BackgroundTasks()
    try:
        ids = forms.uuids(harvest_id, "harvest_ids", MAX_SELECTED)
        try:
            body = CherryLotIn(code=code.strip(), harvest_ids=ids)
        except ValidationError as exc:
            raise forms.schema_error(exc) from None
        lot = routes_lots.create_lot(body, request, background, conn, session.caller)
    except CoffeetraceError as exc:
        return _page(
            request,
            conn,
            session,
            f,
            error=messages.translate(exc, web.lang_of(request)),
            status_code=exc.status_code,
            selected=frozenset(harvest_id),
            code=code[:20],
        )
    response = web.redirect(f"{web.PREFIX}/lots/{lot['id']}?made=1")
    response.background = background
    return response
