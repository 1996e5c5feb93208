"""Shipments between trading partners: create (the sender), list in and out, read one,
follow in transit (transport events, either party), accept or reject (the receiver).

The caller's organisation is its API key's cooperative. Roles as for lots: read-only
reads, operator and admin write. A shipment the caller neither sent nor receives answers
404, as one that does not exist; so does a lot of another organisation named in a line.
The rules are trace/shipments.py's, which `coffeetrace shipment` calls too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from coffeetrace.api.deps import Conn, Keys, Limit, Operator, Reader, UuidCursor, page_of
from coffeetrace.api.routes_lots import witness_after_commit
from coffeetrace.api.routes_organisations import CODE, NAME
from coffeetrace.api.schemas import (
    Error,
    FreeObject,
    Kilograms,
    LotCode,
    Page,
    Strict,
    error_responses,
)
from coffeetrace.trace import shipments

router = APIRouter()

LotKind = Literal["cherry", "dried_cherry", "green", "roasted", "packed", "blend"]
# the domain's vocabularies, as the API's enums (one list each, in trace/shipments.py)
Status = shipments.Status
Direction = shipments.Direction
TransportKind = shipments.TransportKind
SaleType = shipments.SaleType
CONTAINER = r"^[A-Z]{3}[UJZ][0-9]{7}$"


def _whole(value: Any) -> Any:
    """JSON Schema's integer: 3 and 3.0 alike (never "3" or true, which strict refuses)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


LineNumber = Annotated[
    int,
    Field(strict=True, ge=1, le=shipments.MAX_LINES, description="The line's number."),
    BeforeValidator(_whole),
]


def words(max_length: int, default: Any = None) -> Any:
    """Free text: 1 to `max_length` characters, not blank, no NUL."""
    return Field(default, min_length=1, max_length=max_length, pattern=NAME)


def _errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    entries = error_responses(*codes)
    for key, text in described.items():
        entries[int(key[1:])] = {"model": Error, "description": text}
    return entries


# --- bodies ---------------------------------------------------------------------------
class DocumentRef(Strict):
    type: shipments.DocumentType
    number: str = words(100, ...)
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the document's file, lower-case hex (`sha256sum FILE`).",
    )
    # printable ASCII as a range: `\s` means other characters in ECMA regexes (the
    # OpenAPI's dialect) than in the server's, so a client could not trust the schema
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://[\x21-\x7e]+$")


class SaleReference(Strict):
    """The sale as an EPCIS business transaction: a CBV type and its identifier."""

    type: shipments.SaleType = Field(
        description="CBV business transaction type: po, inv, desadv..."
    )
    id: str = words(200, ...)


class ShipmentLineIn(Strict):
    lot_id: UUID = Field(description="One of the sender's own lots.")
    kg: Kilograms


class ShipmentIn(Strict):
    receiver: str = Field(
        pattern=CODE,
        description="The receiving organisation's code or id: an active trading partner.",
        examples=["bmt-export"],
    )
    departed_at: AwareDatetime
    departure_place: str = words(200, ...)
    carrier: str | None = words(200)
    vehicle: str | None = words(100)
    container: str | None = Field(
        None,
        pattern=CONTAINER,
        description="ISO 6346 container number (its check digit is verified).",
        examples=["CSQU3054383"],
    )
    seal: str | None = words(40)
    documents: list[DocumentRef] = Field(default_factory=list, max_length=shipments.MAX_DOCUMENTS)
    sale_reference: SaleReference | None = None
    lines: list[ShipmentLineIn] = Field(min_length=1, max_length=shipments.MAX_LINES)


class ReceiptLineIn(Strict):
    line: LineNumber
    received_kg: Kilograms
    # the receiver's new lot code (as any lot's); lines that give one code make one lot
    code: str = LotCode
    kind: LotKind | None = Field(None, description="Default: the shipped lot's kind.")
    product_id: UUID | None = Field(None, description="One of the receiver's products.")
    measurements: FreeObject | None = None


class AcceptIn(Strict):
    received_at: AwareDatetime
    place: str = words(200, ...)
    measurements: FreeObject | None = Field(
        None, description='What the receiver measured, e.g. {"moisture_pct": 11.8}.'
    )
    documents: list[DocumentRef] = Field(default_factory=list, max_length=shipments.MAX_DOCUMENTS)
    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=shipments.MAX_LINES)


class RejectIn(Strict):
    reason: str = words(500, ...)


class TransportEventIn(Strict):
    kind: shipments.TransportKind
    occurred_at: AwareDatetime
    place: str = words(200, ...)
    note: str | None = words(500)


# --- answers --------------------------------------------------------------------------
class Party(BaseModel):
    code: str
    public_name: str
    country: str


class Document(BaseModel):
    type: str
    number: str
    sha256: str
    url: str | None = None


class SaleReferenceOut(BaseModel):
    type: str
    id: str


class ShippedLot(BaseModel):
    public_id: str
    code: str
    kind: str
    id: UUID | None = Field(None, description="The sender's own lot id (shown to the sender).")


class ReceiverLot(BaseModel):
    public_id: str
    id: UUID | None = Field(None, description="Shown to the receiver only.")
    code: str | None = Field(None, description="Shown to the receiver only.")


class ShipmentLine(BaseModel):
    line: int
    lot: ShippedLot
    kg: float
    received_kg: float | None
    loss_kg: float | None
    loss_pct: float | None
    loss_flagged: bool | None
    measurements: dict[str, Any] | None
    receiver_lot: ReceiverLot | None


class TransportEvent(BaseModel):
    id: UUID
    kind: str
    occurred_at: datetime
    place: str
    note: str | None
    recorded_by: str = Field(description="Code of the organisation that recorded it.")


class Receipt(BaseModel):
    received_at: datetime
    place: str
    received_kg: float
    loss_kg: float
    loss_pct: float
    loss_tolerance_pct: float
    loss_flagged: bool = Field(description="A line's or the whole loss is beyond the tolerance.")
    measurements: dict[str, Any]
    documents: list[Document]


class Rejection(BaseModel):
    rejected_at: datetime
    reason: str


class Shipment(BaseModel):
    id: UUID
    status: shipments.Status
    direction: shipments.Direction = Field(
        description="out: the caller sent it; in: it receives it."
    )
    sender: Party
    receiver: Party
    departed_at: datetime
    departure_place: str
    carrier: str | None
    vehicle: str | None
    container: str | None
    seal: str | None
    documents: list[Document]
    sale_reference: SaleReferenceOut | None
    shipped_kg: float
    created_at: datetime
    lines: list[ShipmentLine]
    transport_events: list[TransportEvent]
    receipt: Receipt | None
    rejection: Rejection | None


ShipmentId = Annotated[UUID, Path(description="The shipment's id.")]
NOT_OURS = "Not a shipment the caller's organisation sent or receives"
CHANGE_ERRORS = dict(
    e404=NOT_OURS,
    e409="The caller's organisation sent it (its receiver accepts or rejects it), or the"
    " shipment is no longer in transit",
)


def _witness(background: BackgroundTasks, request: Request, *organisations: UUID) -> None:
    for organisation in organisations:
        background.add_task(witness_after_commit, request, organisation)


# --- routes ---------------------------------------------------------------------------
@router.get(
    "/v1/shipments",
    response_model=Page[Shipment],
    tags=["shipments"],
    summary="The shipments the organisation sent (out) and receives (in)",
    responses=_errors(401, 422, 503),
)
def list_shipments(
    conn: Conn,
    caller: Reader,
    direction: Annotated[
        shipments.Direction | None, Query(description="out: sent by the caller; in: to the caller.")
    ] = None,
    status: Annotated[
        shipments.Status | None, Query(description="Only those in this state.")
    ] = None,
    limit: Limit = 50,
    cursor: UuidCursor = None,
) -> dict:
    rows = shipments.list_shipments(
        conn,
        caller.cooperative_id,
        direction=direction,
        status=status,
        after=cursor,
        limit=limit + 1,
    )
    return page_of(rows, limit)


@router.post(
    "/v1/shipments",
    response_model=Shipment,
    status_code=201,
    tags=["shipments"],
    summary="Ship kg of the organisation's lots to a trading partner",
    description="The kg leave the lots at once (mass balance, as a processing step takes"
    " them); the receiver accepts or rejects the shipment. A signed event in the sender's"
    " chain.",
    responses=_errors(
        401,
        403,
        413,
        503,
        e404="No organisation has that code or id, or a lot is not one of the caller's",
        e422="Invalid request; or a rule refused it (error `rule_violation`): the receiver"
        " is not an active partner (`not_partners`) or the caller itself (`shipment_self`),"
        " a lot has fewer kg left than asked (`lot_overdrawn`), a lot twice"
        " (`duplicate_line`), a departure in the future (`shipment_in_future`) or before a"
        " lot came to be (`shipment_out_of_order`); or a container number whose check digit"
        " is wrong",
    ),
)
def create_shipment(
    body: ShipmentIn,
    request: Request,
    background: BackgroundTasks,
    conn: Conn,
    caller: Operator,
    keys: Keys,
) -> dict:
    _witness(background, request, caller.cooperative_id)
    return shipments.create(
        conn,
        caller.cooperative_id,
        body.receiver,
        departed_at=body.departed_at,
        departure_place=body.departure_place,
        lines=[(line.lot_id, line.kg) for line in body.lines],
        carrier=body.carrier,
        vehicle=body.vehicle,
        container=body.container,
        seal=body.seal,
        documents=[d.model_dump(exclude_none=True) for d in body.documents],
        sale_reference=body.sale_reference.model_dump() if body.sale_reference else None,
        rules=request.app.state.rules,
        keys=keys,
    )


@router.get(
    "/v1/shipments/{shipment_id}",
    response_model=Shipment,
    tags=["shipments"],
    summary="One shipment the organisation sent or receives",
    responses=_errors(401, 422, 503, e404=NOT_OURS),
)
def get_shipment(shipment_id: ShipmentId, conn: Conn, caller: Reader) -> dict:
    return shipments.get(conn, caller.cooperative_id, shipment_id)


@router.post(
    "/v1/shipments/{shipment_id}/accept",
    response_model=Shipment,
    tags=["shipments"],
    summary="Accept a shipment with what was weighed and measured (the receiver)",
    description="Creates the receiver's lots (one per code given), each linked to the"
    " shipped lots; a loss beyond COFFEETRACE_SHIPMENT_LOSS_TOLERANCE_PCT is flagged. The"
    " receipt is a signed event in both chains and records the hash of the sender's.",
    responses=_errors(
        401,
        403,
        413,
        503,
        **CHANGE_ERRORS,
        e422="Invalid request, lines that are not the shipment's (each once), a product that"
        " is not the caller's, or a rule: more received than shipped (`mass_balance`), a"
        " receipt in the future or before the departure",
    ),
)
def accept_shipment(
    shipment_id: ShipmentId,
    body: AcceptIn,
    request: Request,
    background: BackgroundTasks,
    conn: Conn,
    caller: Operator,
    keys: Keys,
) -> dict:
    row = shipments.accept(
        conn,
        caller.cooperative_id,
        shipment_id,
        received_at=body.received_at,
        arrival_place=body.place,
        lines=[line.model_dump() for line in body.lines],
        measurements=body.measurements,
        documents=[d.model_dump(exclude_none=True) for d in body.documents],
        loss_tolerance_pct=request.app.state.settings.shipment_loss_tolerance_pct,
        rules=request.app.state.rules,
        keys=keys,
    )
    _witness(background, request, caller.cooperative_id)
    return row


@router.post(
    "/v1/shipments/{shipment_id}/reject",
    response_model=Shipment,
    tags=["shipments"],
    summary="Reject a shipment with a reason (the receiver); its kg return to the sender",
    responses=_errors(401, 403, 413, 422, 503, **CHANGE_ERRORS),
)
def reject_shipment(
    shipment_id: ShipmentId, body: RejectIn, conn: Conn, caller: Operator, keys: Keys
) -> dict:
    return shipments.reject(conn, caller.cooperative_id, shipment_id, reason=body.reason, keys=keys)


@router.post(
    "/v1/shipments/{shipment_id}/transport-events",
    response_model=Shipment,
    status_code=201,
    tags=["shipments"],
    summary="Follow a shipment in transit: departure port, arrival port... (either party)",
    responses=_errors(
        401,
        403,
        413,
        503,
        e404=NOT_OURS,
        e409="The shipment is no longer in transit",
        e422="Invalid request, or a time in the future or before the departure",
    ),
)
def add_transport_event(
    shipment_id: ShipmentId,
    body: TransportEventIn,
    request: Request,
    conn: Conn,
    caller: Operator,
    keys: Keys,
) -> dict:
    return shipments.record_transport(
        conn,
        caller.cooperative_id,
        shipment_id,
        kind=body.kind,
        occurred_at=body.occurred_at,
        place=body.place,
        note=body.note,
        rules=request.app.state.rules,
        keys=keys,
    )
