"""DDS reference numbers that travel with the coffee (trace/dds_references.py):
POST /v1/lots/{id}/dds records the numbers of a statement the organisation filed or
received for its lot, GET /v1/lots/{id}/dds/references lists those in force for a lot (its
own and its upstream lots'), PUT /v1/organisations/me/dds-number-public sets whether the
organisation's public pages show the numbers it recorded. Included by routes_dds.router.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from coffeetrace.api.deps import Admin, Conn, Keys, Operator, Reader
from coffeetrace.api.routes_lots import owned_lot
from coffeetrace.api.schemas import Error, Strict, error_responses
from coffeetrace.trace import dds_references
from coffeetrace.trace.jsonutil import jsonable

router = APIRouter(responses=error_responses(401, 403, 503))


class ReferenceIn(Strict):
    """The numbers the EU Information System gave a statement (RULES.md)."""

    reference_number: str = Field(
        pattern=r"^[A-Za-z0-9]{1,14}$",
        description="The DDS reference number: 1 to 14 letters and digits (upper-cased)",
        examples=["25VNDE12345678"],
    )
    verification_number: str = Field(
        pattern=r"^[A-Za-z0-9]{5,35}$",
        description="Its verification number: 5 to 35 letters and digits (upper-cased)",
        examples=["KYBFRB6R"],
    )
    role: Literal["filed", "received"] = Field(
        "received",
        description="`filed`: the organisation filed it for this lot; `received`: it came"
        " with the coffee (the supplier's)",
    )
    note: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class LotRef(BaseModel):
    id: UUID
    code: str
    public_id: str


class OrganisationRef(BaseModel):
    code: str
    name: str


class Reference(BaseModel):
    reference_number: str
    verification_number: str
    role: Literal["filed", "received"]
    source: Literal["recorded", "submitted"] = Field(
        description="`recorded` (POST /v1/lots/{id}/dds, a signed chain event) or"
        " `submitted` (filed through `coffeetrace dds submit`, AVAILABLE at the EU)"
    )
    own: bool = Field(description="Recorded on this lot; else on a lot upstream of it")
    lot: LotRef
    organisation: OrganisationRef
    number_public: bool
    recorded_at: datetime


class Recorded(BaseModel):
    id: UUID
    lot_id: UUID
    reference_number: str
    verification_number: str
    role: str
    note: str | None
    recorded_by: str
    recorded_at: datetime
    event_seq: int


class References(BaseModel):
    lot_id: UUID
    references: list[Reference]
    grouped: list[str] = Field(
        description="The reference numbers a statement of this lot groups"
        " (groupedDeclarations of GET /v1/lots/{id}/dds): all but those this lot's"
        " organisation filed for it"
    )


class NumberPublicIn(Strict):
    public: bool = Field(description="Show the DDS reference numbers on public lot pages")


class NumberPublic(BaseModel):
    code: str
    dds_number_public: bool


@router.post(
    "/lots/{lot_id}/dds",
    tags=["exports"],
    status_code=201,
    response_model=Recorded,
    summary="Record the DDS reference and verification numbers of the lot's statement",
    description="A statement the organisation filed for the lot, or received with it. The"
    " numbers follow the kilograms to every downstream lot (blends, packing, shipments):"
    " GET /v1/lots/{id}/dds/references, the groupedDeclarations of their statements, their"
    " EPCIS events and public pages. A signed chain event; held by verification.",
    responses={
        404: {"model": Error, "description": "Not a lot of your organisation"},
        409: {"model": Error, "description": "The lot holds that reference number already"},
        422: {"model": Error, "description": "A number that is not the EU's (field named)"},
    },
)
def record_reference(
    lot_id: UUID, body: ReferenceIn, conn: Conn, caller: Operator, keys: Keys
) -> Any:
    owned_lot(conn, caller.cooperative_id, lot_id)
    row = dds_references.record(
        conn,
        keys,
        caller.cooperative_id,
        lot_id,
        reference_number=body.reference_number,
        verification_number=body.verification_number,
        role=body.role,
        note=body.note,
        recorded_by=f"api key {caller.key_id} ({caller.cooperative_code})",
    )
    return jsonable(row)


@router.get(
    "/lots/{lot_id}/dds/references",
    tags=["exports"],
    response_model=References,
    summary="The DDS references in force for the lot: its own and every upstream lot's",
    description="Through blends, packing and shipments (the backward genealogy), each with"
    " the lot and organisation it was recorded on; statements filed through coffeetrace"
    " count once AVAILABLE in COFFEETRACE_EUDR_ENVIRONMENT.",
    responses={404: {"model": Error, "description": "Not a lot of your organisation"}},
)
def lot_references(lot_id: UUID, conn: Conn, caller: Reader, request: Request) -> Any:
    owned_lot(conn, caller.cooperative_id, lot_id)
    found = dds_references.in_force(
        conn, lot_id, environment=request.app.state.settings.eudr_environment
    )
    return {"lot_id": lot_id, "references": found, "grouped": dds_references.to_group(found)}


@router.put(
    "/organisations/me/dds-number-public",
    tags=["organisations"],
    response_model=NumberPublic,
    summary="Whether the organisation's public lot pages show its DDS reference numbers",
    description="Pages always say that a statement is on file; the reference number (never"
    " the verification number) only when the organisation that recorded it allows it.",
)
def set_number_public(body: NumberPublicIn, conn: Conn, caller: Admin) -> Any:
    return dds_references.set_number_public(conn, caller.cooperative_id, body.public)
