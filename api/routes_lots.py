"""Lots, transformations, traces, chain verification, exports, lot QR codes and labels.

Trace functions that take only a lot id are called after the lot has been found in
the caller's cooperative, so an id of another cooperative answers 404 (OWASP API1).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from coffeetrace import db
from coffeetrace.api import labels, qr
from coffeetrace.api.deps import Conn, Keys, Operator, Reader, page
from coffeetrace.api.routes_registry import Limit, UuidCursor, WithBody, _get, text_filter
from coffeetrace.api.schemas import (
    CherryLotIn,
    Error,
    LabelsIn,
    Lot,
    Page,
    Transformation,
    TransformationIn,
    error_responses,
)
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import (
    checkpoints,
    genealogy,
    lots,
    plausibility,
    processing,
    statements,
    trail,
    verification,
)
from coffeetrace.trace import epcis as epcis_export
from coffeetrace.trace import eudr as eudr_export

SQL = load_queries("coffeetrace.api", "registry.sql")

router = APIRouter(prefix="/v1", responses=error_responses(401, 403, 404, 409, 422, 503))
JsonDoc = dict[str, Any]


def owned_lot(conn: Conn, cooperative_id: UUID, lot_id: UUID) -> dict[str, Any]:
    return _get(conn, SQL["get_lot_summary"], "lot", lot_id, cooperative_id)


@router.get("/lots", response_model=Page[Lot], tags=["lots"])
def list_lots(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    kind: Annotated[str | None, text_filter(20)] = None,
    product_id: UUID | None = None,
    code: Annotated[str | None, text_filter(20)] = None,
) -> dict:
    return page(
        conn,
        SQL["list_lots"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "kind": kind,
            "product_id": product_id,
            "code": code,
        },
        limit,
    )


@router.post(
    "/lots",
    response_model=Lot,
    status_code=201,
    tags=["lots"],
    summary="Build a cherry lot from harvest events",
    responses={
        **WithBody,
        404: {
            "model": Error,
            "description": "A harvest, tree, plot, farm or product named is not one of your"
            " cooperative's",
        },
        422: {
            "model": Error,
            "description": "Invalid request; or the harvests chosen cannot make a lot"
            " (error `rule_violation`): no harvest with kilograms left matches the selection"
            " (`no_harvests`), a named harvest is already wholly in other lots"
            " (`harvest_consumed`), or a harvest no longer matches what ingest sealed"
            " (`harvest_unverified`)",
        },
    },
)
def create_lot(
    body: CherryLotIn, request: Request, background: BackgroundTasks, conn: Conn, caller: Operator
) -> dict:
    if body.product_id is not None:
        _get(conn, SQL["get_product"], "product", body.product_id, caller.cooperative_id)
    # name the foreign or unknown id (404) rather than report an empty selection
    for query, kind, ids in (
        (SQL["get_plot"], "plot", body.plot_ids),
        (SQL["get_tree"], "tree", body.tree_ids),
        (SQL["get_farm"], "farm", body.farm_ids),
    ):
        for id_ in ids or ():
            _get(conn, query, kind, id_, caller.cooperative_id)
    background.add_task(witness_after_commit, request, caller.cooperative_id)
    return lots.build_cherry_lot(
        conn,
        caller.cooperative_id,
        code=body.code,
        # an empty list names nothing: the harvests are chosen by the lists given
        harvest_ids=body.harvest_ids or None,
        tree_ids=body.tree_ids,
        plot_ids=body.plot_ids,
        farm_ids=body.farm_ids,
        since=body.since,
        until=body.until,
        product_id=body.product_id,
        rules=request.app.state.rules,
        keys=request.app.state.keys,
    )


def witness_after_commit(request: Request, cooperative_id: UUID) -> None:
    """Run after the response, so after the commit: the witness may see the checkpoint the
    write just signed (a refused or rolled-back write left a checkpoint nobody sees)."""
    with db.transaction(request.app.state.pool) as conn:
        checkpoints.observe(conn, request.app.state.keys, cooperative_id)


@router.get("/lots/{lot_id}", response_model=Lot, tags=["lots"])
def get_lot(lot_id: UUID, conn: Conn, caller: Reader) -> dict:
    return owned_lot(conn, caller.cooperative_id, lot_id)


@router.get(
    "/lots/{lot_id}/trace",
    response_model=JsonDoc,
    tags=["traces"],
    summary="Backward trace: lots, steps, harvests, trees, plots and farms with shares",
)
def trace_backward(lot_id: UUID, conn: Conn, caller: Reader) -> Any:
    """Upstream organisations' rows as they granted them (the partnerships' scopes,
    trace/trail.py): never another's internal ids or a farm's private data."""
    owned_lot(conn, caller.cooperative_id, lot_id)
    return trail.backward_for(conn, caller.cooperative_id, lot_id)


FORWARD_FROM = ("lot_id", "tree_id", "plot_id", "farm_id")
# "exactly one of four query parameters" in OpenAPI terms: one object parameter, exploded
# into the query string (form style), whose schema requires exactly one of its properties
FORWARD_FROM_PARAMETER = {
    "name": "from",
    "in": "query",
    "required": True,
    "style": "form",
    "explode": True,
    "description": "Where the recall starts: exactly one of `lot_id`, `tree_id`, `plot_id`,"
    " `farm_id`, each a query parameter of its own (`?tree_id=...`).",
    "schema": {
        "type": "object",
        "properties": {name: {"type": "string", "format": "uuid"} for name in FORWARD_FROM},
        "oneOf": [{"required": [name]} for name in FORWARD_FROM],
    },
}
ForwardFrom = Annotated[UUID | None, Query(include_in_schema=False)]


@router.get(
    "/trace/forward",
    response_model=JsonDoc,
    tags=["traces"],
    summary="Forward trace (recall): every lot downstream of one lot, tree, plot or farm",
    openapi_extra={"parameters": [FORWARD_FROM_PARAMETER]},
)
def trace_forward(
    conn: Conn,
    caller: Reader,
    lot_id: ForwardFrom = None,
    tree_id: ForwardFrom = None,
    plot_id: ForwardFrom = None,
    farm_id: ForwardFrom = None,
) -> Any:
    given = {
        k: v
        for k, v in dict(lot_id=lot_id, tree_id=tree_id, plot_id=plot_id, farm_id=farm_id).items()
        if v is not None
    }
    if len(given) != 1:
        raise ValidationFailed(
            "give exactly one of lot_id, tree_id, plot_id, farm_id", given=sorted(given)
        )
    ((name, value),) = given.items()
    query = {
        "lot_id": SQL["get_lot_summary"],
        "tree_id": SQL["get_tree"],
        "plot_id": SQL["get_plot"],
        "farm_id": SQL["get_farm"],
    }[name]
    _get(conn, query, name.removesuffix("_id"), value, caller.cooperative_id)
    # other organisations' downstream lots by public id, organisation name, kg and the
    # caller's shipments they came by; nothing private of theirs (trace/trail.py)
    return trail.forward_for(conn, caller.cooperative_id, genealogy.trace_forward(conn, **given))


@router.get(
    "/lots/{lot_id}/verify",
    response_model=JsonDoc,
    tags=["traces"],
    summary="Check the lot's events against the hash chain",
)
def verify(lot_id: UUID, conn: Conn, caller: Reader, keys: Keys) -> Any:
    owned_lot(conn, caller.cooperative_id, lot_id)
    return verification.verify_lot(conn, lot_id, keys=keys)


@router.get(
    "/lots/{lot_id}/flags",
    response_model=list[JsonDoc],
    tags=["traces"],
    summary="Plausibility flags of the trees and harvests behind the lot",
)
def lot_flags(lot_id: UUID, request: Request, conn: Conn, caller: Reader) -> Any:
    """Implausible data is shown, never silently accepted: a tree's season far above what
    its age and cultivar allow, a harvest before the tree was planted, a tree outside the
    plot it is registered to."""

    owned_lot(conn, caller.cooperative_id, lot_id)
    return plausibility.flags_for_lot(conn, lot_id, rules=request.app.state.rules)


@router.get(
    "/flags",
    response_model=list[JsonDoc],
    tags=["traces"],
    summary="The cooperative's plausibility flags, newest first",
)
def cooperative_flags(conn: Conn, caller: Reader, limit: Limit = 50) -> Any:
    return plausibility.flags_for_cooperative(conn, caller.cooperative_id, limit=limit)


@router.get(
    "/lots/{lot_id}/provenance",
    response_model=JsonDoc,
    tags=["traces"],
    summary="The signed public provenance document",
)
def provenance(lot_id: UUID, conn: Conn, caller: Reader) -> Any:
    """The statement signed when the lot's history last moved, with the newest checkpoint
    and the inclusion proofs of the lot's events in it (404 for a lot without one)."""
    owned_lot(conn, caller.cooperative_id, lot_id)
    served = statements.served(conn, lot_id)
    if served is None:
        raise NotFound("the lot has no signed statement (see `coffeetrace keys sign-legacy`)")
    return served


@router.get(
    "/lots/{lot_id}/epcis",
    tags=["exports"],
    summary="EPCIS 2.0 JSON-LD document",
    response_class=JSONResponse,
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}}},
)
def epcis(lot_id: UUID, request: Request, conn: Conn, caller: Reader) -> Response:
    owned_lot(conn, caller.cooperative_id, lot_id)
    doc = epcis_export.export_epcis(
        conn, lot_id, request.app.state.settings.public_base_url, dds_numbers="all"
    )
    return JSONResponse(jsonable_encoder(doc), media_type="application/ld+json")


@router.get(
    "/lots/{lot_id}/eudr",
    tags=["exports"],
    summary="EUDR geolocation GeoJSON of the plots that fed the lot",
    responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}},
)
def eudr(lot_id: UUID, conn: Conn, caller: Reader) -> Response:
    owned_lot(conn, caller.cooperative_id, lot_id)
    doc = eudr_export.export_eudr(conn, lot_id)
    return Response(eudr_export.dumps(doc), media_type="application/geo+json")


@router.get(
    "/lots/{lot_id}/qr.{fmt}",
    tags=["qr"],
    summary="QR code of the lot (Digital Link)",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    response_class=Response,
)
def lot_qr(
    lot_id: UUID,
    fmt: qr.Format,
    request: Request,
    conn: Conn,
    caller: Reader,
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    lot = owned_lot(conn, caller.cooperative_id, lot_id)
    uri = qr.lot_uri(request.app.state.settings.public_base_url, lot)
    return Response(
        qr.render(uri, fmt, scale=scale),
        media_type=qr.MEDIA_TYPES[fmt],
        headers={"X-Encoded-URI": uri},
    )


@router.post(
    "/labels",
    tags=["qr"],
    summary="A4 PDF sheet of labels for the lots",
    responses={200: {"content": {"application/pdf": {}}}, **WithBody},
    response_class=Response,
)
def lot_labels(body: LabelsIn, request: Request, conn: Conn, caller: Reader) -> Response:
    found = [owned_lot(conn, caller.cooperative_id, lot_id) for lot_id in body.lot_ids]
    pdf = labels.render_labels(found, request.app.state.settings.public_base_url)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="labels.pdf"'},
    )


# --- transformations ----------------------------------------------------------------
@router.get("/transformations", response_model=Page[Transformation], tags=["lots"])
def list_transformations(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    step: Annotated[str | None, text_filter(40)] = None,
    lot_id: UUID | None = None,
) -> dict:
    return page(
        conn,
        SQL["list_transformations"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "id": None,
            "step": step,
            "lot_id": lot_id,
        },
        limit,
    )


@router.get("/transformations/{transformation_id}", response_model=Transformation, tags=["lots"])
def get_transformation(transformation_id: UUID, conn: Conn, caller: Reader) -> dict:
    rows = conn.execute(
        SQL["list_transformations"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": None,
            "id": transformation_id,
            "step": None,
            "lot_id": None,
            "limit": 1,
        },
    ).fetchall()
    if not rows:
        raise NotFound(f"transformation {transformation_id} does not exist in your cooperative")
    return rows[0]


@router.post(
    "/transformations",
    response_model=JsonDoc,
    status_code=201,
    tags=["lots"],
    summary="Record a processing step: consumes input lots, creates output lots",
    responses={
        **WithBody,
        404: {
            "model": Error,
            "description": "An input lot or output product is not one of your cooperative's",
        },
        422: {
            "model": Error,
            "description": "Invalid request; or a rule of the step refused it (error"
            " `rule_violation`, the rule named): a step this deployment does not know"
            " (`unknown_step`: COFFEETRACE_STEP_MAX_YIELD lists them), a step dated in the"
            " future (`step_in_future`) or before its newest input came to be"
            " (`step_before_inputs`), more kilograms out than the step's yield allows"
            " (`mass_balance`, `cherry_yield`), more taken from a lot than it has left"
            " (`lot_overdrawn`), or a lot twice among the inputs (`duplicate_input`)",
        },
    },
)
def create_transformation(
    body: TransformationIn,
    request: Request,
    background: BackgroundTasks,
    conn: Conn,
    caller: Operator,
) -> Any:
    background.add_task(witness_after_commit, request, caller.cooperative_id)
    for out in body.outputs:
        if out.product_id is not None:
            _get(conn, SQL["get_product"], "product", out.product_id, caller.cooperative_id)
    return processing.record_transformation(
        conn,
        caller.cooperative_id,
        step=body.step,
        occurred_at=body.occurred_at,
        inputs=[(i.lot_id, i.kg) for i in body.inputs],
        outputs=[o.model_dump(exclude_none=True) for o in body.outputs],
        place=body.place,
        place_i18n=body.place_i18n.model_dump(exclude_none=True) if body.place_i18n else None,
        measurements=body.measurements,
        evidence=body.evidence,
        rules=request.app.state.rules,
        keys=request.app.state.keys,
    )
