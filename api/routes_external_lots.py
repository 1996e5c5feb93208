"""External lots: coffee from outside the platform that the caller's organisation declares
with an origin claim (country, producer, supplier, documents), to blend under mass balance.

Once declared it is one of the organisation's lots (`/v1/lots/{id}`, an input of
`POST /v1/transformations`); these routes declare it and read its claim. Roles as for
lots: read-only reads, operator and admin declare. An external lot of another
organisation answers 404, as one that does not exist. The rules are
trace/external_lots.py's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from coffeetrace.api.deps import Conn, Limit, Operator, Reader, UuidCursor, page_of
from coffeetrace.api.routes_lots import witness_after_commit
from coffeetrace.api.routes_organisations import COUNTRIES
from coffeetrace.api.routes_shipments import Document, DocumentRef, LotKind, _errors, words
from coffeetrace.api.schemas import Kilograms, LotCode, Page, Strict
from coffeetrace.trace import external_lots, shipments

router = APIRouter()


class ExternalLotIn(Strict):
    code: str = LotCode
    kg: Kilograms
    kind: LotKind = "green"
    origin_country: str = Field(
        json_schema_extra={"enum": COUNTRIES},
        description="Country of origin, ISO 3166-1 alpha-2 (BR, ET, CO...).",
        examples=["BR"],
    )
    producer: str = words(200, ...)
    supplier: str | None = words(200)
    documents: list[DocumentRef] = Field(default_factory=list, max_length=shipments.MAX_DOCUMENTS)
    received_at: AwareDatetime = Field(
        description="When the organisation took it in: no step on it can be earlier."
    )
    product_id: UUID | None = Field(None, description="One of the organisation's products.")


class ExternalLot(BaseModel):
    id: UUID = Field(description="The lot's id (as /v1/lots/{id}).")
    public_id: str
    code: str
    kind: str
    quantity_kg: float
    remaining_kg: float
    product_id: UUID | None
    origin_country: str
    producer: str
    supplier: str | None
    documents: list[Document]
    received_at: datetime
    created_at: datetime


ExternalLotId = Annotated[UUID, Path(description="The external lot's id (its lot id).")]


@router.get(
    "/v1/external-lots",
    response_model=Page[ExternalLot],
    tags=["lots"],
    summary="The organisation's external lots and their origin claims",
    responses=_errors(401, 422, 503),
)
def list_external_lots(
    conn: Conn,
    caller: Reader,
    country: Annotated[
        str | None,
        Query(json_schema_extra={"enum": COUNTRIES}, description="Only those of this origin."),
    ] = None,
    limit: Limit = 50,
    cursor: UuidCursor = None,
) -> dict:
    rows = external_lots.list_external(
        conn, caller.cooperative_id, after=cursor, country=country, limit=limit + 1
    )
    return page_of(rows, limit)


@router.get(
    "/v1/external-lots/{external_lot_id}",
    response_model=ExternalLot,
    tags=["lots"],
    summary="One external lot and its origin claim",
    responses=_errors(401, 422, 503, e404="Not an external lot of the caller's organisation"),
)
def get_external_lot(external_lot_id: ExternalLotId, conn: Conn, caller: Reader) -> Any:
    return external_lots.get(conn, caller.cooperative_id, external_lot_id)


@router.post(
    "/v1/external-lots",
    response_model=ExternalLot,
    status_code=201,
    tags=["lots"],
    summary="Declare a lot from outside the platform, with its origin claim",
    description="A lot of the caller's organisation made by no step and fed by no harvest;"
    " its backward trace, and that of every lot it goes into, shows it as its own share."
    " A signed lot_created event in the organisation's chain records the lot and the claim.",
    responses=_errors(
        401,
        403,
        413,
        503,
        e404="The product is not one of the caller's organisation's",
        e409="The lot code is used in the organisation already",
        e422="Invalid request (a country that is not ISO 3166-1 alpha-2, a blank producer,"
        " a document without its SHA-256...); or a rule refused it (error `rule_violation`):"
        " received in the future (`step_in_future`)",
    ),
)
def declare_external_lot(
    body: ExternalLotIn,
    request: Request,
    background: BackgroundTasks,
    conn: Conn,
    caller: Operator,
) -> Any:
    background.add_task(witness_after_commit, request, caller.cooperative_id)
    return external_lots.declare(
        conn,
        caller.cooperative_id,
        code=body.code,
        kg=str(body.kg),
        kind=body.kind,
        origin_country=body.origin_country,
        producer=body.producer,
        supplier=body.supplier,
        documents=[d.model_dump(exclude_none=True) for d in body.documents],
        received_at=body.received_at,
        product_id=body.product_id,
        rules=request.app.state.rules,
        keys=request.app.state.keys,
    )
