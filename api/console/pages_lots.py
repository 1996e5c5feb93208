"""The Lots screens: the list, a lot's detail (the steps that made it and took from it,
with lots and kilograms), recording a processing step with its mass-balance limits shown
beforehand and its refusals explained in the form, the public page, the QR code and the
labels PDF.

Writes and files go through the API's handlers (`POST /v1/transformations`,
`GET /v1/lots/{id}/qr.svg`, `POST /v1/labels`) with the user as the caller.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response
from pydantic import ValidationError

from coffeetrace.api import qr, routes_lots
from coffeetrace.api.console import forms, messages, web
from coffeetrace.api.console.pages_today import NEXT_STEP
from coffeetrace.api.console.sessions import Session
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.api.schemas import LabelsIn, TransformationIn
from coffeetrace.errors import CoffeetraceError, NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace.lots import LOT_KINDS

SQL = load_queries("coffeetrace.api", "console_pages.sql")
router = APIRouter(route_class=web.ConsoleRoute)
FormText = Annotated[str, Form(max_length=200)]
# the kind a step's output usually has, to preselect it in the form
OUTPUT_KIND = {
    "drying": "dried_cherry",
    "hulling": "green",
    "cherry_to_green": "green",
    "roasting": "roasted",
    "packing": "packed",
    "wet_processing": "green",
}
MAX_LABELS = 200  # as the API's LabelsIn


@router.get("/lots")
def lots(
    request: Request,
    conn: Conn,
    session: Viewer,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    code: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    rows = conn.execute(
        SQL["console_list_lots"],
        {
            "cooperative_id": session.cooperative_id,
            "kind": kind if kind in LOT_KINDS else None,
            "code": forms.text(code, "code", 20),
            "limit": web.settings_of(request).console_page_rows,
        },
    ).fetchall()
    return web.page(
        request, "lots.html", lots=rows, kinds=LOT_KINDS, kind=kind or "", code=code or ""
    )


def _lot(conn: Conn, session: Session, lot_id: UUID) -> dict[str, Any]:
    row = conn.execute(
        SQL["console_lot_detail"], {"id": lot_id, "cooperative_id": session.cooperative_id}
    ).fetchone()
    if row is None:  # another cooperative's lot, or none: as the API, 404
        raise NotFound(f"lot {lot_id} does not exist in your cooperative", kind="lot")
    return row


def limits(request: Request, lot: dict[str, Any]) -> list[dict[str, Any]]:
    """For each step, the most kilograms out of the lot's remaining kilograms: the step's
    yield (COFFEETRACE_STEP_MAX_YIELD), and over all steps the cap of the output's kind
    per kg of fresh cherry behind it (COFFEETRACE_KIND_MAX_YIELD_FROM_CHERRY)."""
    rules = request.app.state.rules
    remaining = Decimal(str(lot["remaining_kg"]))
    cherry = None
    if lot["cherry_equiv_kg"] is not None and lot["quantity_kg"] > 0:
        cherry = Decimal(str(lot["cherry_equiv_kg"])) * remaining / Decimal(str(lot["quantity_kg"]))
    rows = []
    for step, ratio in sorted(rules.step_max_yield.items()):
        kind = OUTPUT_KIND.get(step, lot["kind"])
        max_kg = remaining * Decimal(str(ratio))
        cap = rules.kind_max_yield_from_cherry.get(kind)
        if cherry is not None and cap is not None:
            max_kg = min(max_kg, cherry * Decimal(str(cap)))
        rows.append({"step": step, "max_yield": ratio, "kind": kind, "max_kg": float(max_kg)})
    return rows


def _detail(
    request: Request,
    conn: Conn,
    session: Session,
    lot_id: UUID,
    *,
    error: str | None = None,
    status_code: int = 200,
    sent: dict[str, Any] | None = None,
) -> Response:
    lot = _lot(conn, session, lot_id)
    steps = conn.execute(
        SQL["console_lot_steps"], {"id": lot_id, "cooperative_id": session.cooperative_id}
    ).fetchall()
    next_step = NEXT_STEP.get(lot["kind"], "")
    products = conn.execute(
        SQL["console_products"], {"cooperative_id": session.cooperative_id}
    ).fetchall()
    return web.page(
        request,
        "lot.html",
        status_code=status_code,
        lot=lot,
        made=[s for s in steps if s["role"] == "made"],
        used=[s for s in steps if s["role"] == "used"],
        public_url=qr.lot_uri(web.settings_of(request).public_base_url, lot),
        limits=limits(request, lot),
        steps=sorted(request.app.state.rules.step_max_yield),
        kinds=LOT_KINDS,
        products=products,
        error=error,
        sent=sent
        or {
            "step": next_step,
            "kind": OUTPUT_KIND.get(next_step, ""),
            "input_kg": lot["remaining_kg"],
        },
        just_made=request.query_params.get("made") == "1",
        can_write=session.role != "read-only",
    )


@router.get("/lots/{lot_id}")
def lot_detail(lot_id: UUID, request: Request, conn: Conn, session: Viewer) -> Response:
    return _detail(request, conn, session, lot_id)


@router.post("/lots/{lot_id}/steps")
def record_step(
    lot_id: UUID,
    request: Request,
    conn: Conn,
    session: Viewer,
    csrf: FormText = "",
    step: FormText = "",
    occurred_at: FormText = "",
    input_kg: FormText = "",
    code: FormText = "",
    output_kg: FormText = "",
    kind: FormText = "",
    product_id: FormText = "",
    place: FormText = "",
    moisture_pct: FormText = "",
) -> Response:
    session.check_csrf(csrf)
    session.caller.require("operator")
    _lot(conn, session, lot_id)  # another cooperative's lot: 404 before anything
    sent = {
        "step": step[:40],
        "occurred_at": occurred_at[:40],
        "input_kg": input_kg[:30],
        "code": code[:20],
        "output_kg": output_kg[:30],
        "kind": kind[:20],
        "product_id": product_id[:40],
        "place": place[:200],
        "moisture_pct": moisture_pct[:10],
    }
    background = BackgroundTasks()
    zone = ZoneInfo(web.settings_of(request).console_time_zone)
    try:
        measurements: dict[str, float] = {}
        moisture = forms.kg(moisture_pct, "moisture_pct")
        if moisture is not None:
            measurements["moisture_pct"] = moisture
        try:
            body = TransformationIn.model_validate(
                {
                    "step": step.strip(),
                    "occurred_at": forms.local_time(occurred_at, "occurred_at", zone),
                    "inputs": [{"lot_id": lot_id, "kg": forms.kg(input_kg, "inputs.kg")}],
                    "outputs": [
                        {
                            "code": code.strip(),
                            "kg": forms.kg(output_kg, "outputs.kg"),
                            "kind": kind.strip(),
                            "product_id": forms.uuid(product_id, "product_id"),
                        }
                    ],
                    "place": forms.text(place, "place"),
                    "measurements": measurements or None,
                }
            )
        except ValidationError as exc:
            raise forms.schema_error(exc) from None
        made = routes_lots.create_transformation(body, request, background, conn, session.caller)
    except CoffeetraceError as exc:
        return _detail(
            request,
            conn,
            session,
            lot_id,
            error=messages.translate(exc, web.lang_of(request)),
            status_code=exc.status_code,
            sent=sent,
        )
    response = web.redirect(f"{web.PREFIX}/lots/{made['outputs'][0]['id']}?made=1")
    response.background = background
    return response


@router.get("/lots/{lot_id}/qr.svg")
def lot_qr(lot_id: UUID, request: Request, conn: Conn, session: Viewer) -> Response:
    return routes_lots.lot_qr(lot_id, "svg", request, conn, session.caller, scale=4)


@router.get("/labels.pdf")
def labels(
    request: Request,
    conn: Conn,
    session: Viewer,
    lot: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    ids = forms.uuids(lot, "lot_ids", MAX_LABELS)
    try:
        body = LabelsIn(lot_ids=ids)
    except ValidationError as exc:
        raise forms.schema_error(exc) from None
    return routes_lots.lot_labels(body, request, conn, session.caller)
