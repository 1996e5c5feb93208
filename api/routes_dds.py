"""EUDR due diligence statements: GET /v1/lots/{id}/dds, the V3 SubmitDdsRequest of a lot
(trace/dds.py) as JSON (every statement, with the split report) or as XML (one statement,
`part`), for the operator who files it; and, included here, the EUDR plot files of
routes_plot_files.py (POST /v1/plots/import).

Who files and how are query parameters: no organisation holds an EORI, a role or an
activity yet (docs/eudr.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from coffeetrace.api import routes_dds_references, routes_eudr_evidence, routes_plot_files
from coffeetrace.api.deps import Conn, Keys, Operator
from coffeetrace.api.routes_lots import owned_lot
from coffeetrace.api.schemas import Error, error_responses
from coffeetrace.errors import ValidationFailed
from coffeetrace.trace import dds, eudr_readiness

router = APIRouter(prefix="/v1", responses=error_responses(401, 403, 404, 503))

XML = "application/xml"
JSON = "application/json"
EORI = r"^[A-Z]{2}[A-Za-z0-9]{1,15}$"
IDENTIFIER = rf"^({'|'.join(dds.IDENTIFIER_TYPES)}):[^\x00]{{1,80}}$"
EU_COUNTRY = rf"^({'|'.join(sorted(dds.EU_COUNTRIES))})$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Reference = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,14}$")]


def _text(max_length: int, description: str) -> Any:
    return Field(
        None, min_length=1, max_length=max_length, pattern=r"^[^\x00]*$", description=description
    )


class DdsQuery(BaseModel):
    """Who files the statement and how (dds.Filing)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["json", "xml"] | None = Field(
        None, description="`xml`: one SubmitDdsRequest (see `part`); default: the Accept header"
    )
    part: int | None = Field(
        None, ge=1, le=10_000, description="Which statement as XML when the lot needs several"
    )
    activity: Literal["IMPORT", "EXPORT", "DOMESTIC"] = Field(
        "IMPORT", description="IMPORT (release for free circulation), EXPORT or DOMESTIC"
    )
    role: Literal["OPERATOR", "REPRESENTATIVE_OPERATOR"] | None = Field(
        None, description="Default: REPRESENTATIVE_OPERATOR when a represented operator is named"
    )
    operator_eori: str | None = Field(
        None, pattern=EORI, description="The filing operator's EORI (kept in `filing`)"
    )
    operator_name: str | None = _text(200, "The filing operator's name (kept in `filing`)")
    operator_id: list[Identifier] = Field(
        [], max_length=12, description="More identifiers of the filing operator, `type:value`"
    )
    represented_name: str | None = _text(200, "The represented operator's name")
    represented_eori: str | None = Field(
        None, pattern=EORI, description="The represented operator's EORI"
    )
    represented_id: list[Identifier] = Field(
        [], max_length=12, description="More identifiers of it, `type:value` (vat, gln, duns...)"
    )
    represented_email: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
        description="Its e-mail",
    )
    represented_phone: str | None = _text(50, "Its phone")
    represented_country: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="Its address: country (ISO 3166-1 alpha-2)"
    )
    represented_street: str | None = _text(300, "Its address: street and number")
    represented_postal_code: str | None = _text(80, "Its address: postal code")
    represented_city: str | None = _text(200, "Its address: city")
    country: str | None = Field(
        None, pattern=EU_COUNTRY, description="Country of activity: the member state (or XI)"
    )
    border_country: str | None = Field(
        None,
        pattern=EU_COUNTRY,
        description="Country of entry (IMPORT) or exit (EXPORT); default: the country",
    )
    confidential: bool = Field(False, description="geoLocationConfidential")
    reference: str | None = _text(
        dds.INTERNAL_REFERENCE_MAX, "Internal reference; default: the lot's code"
    )
    comment: str | None = _text(2000, "A comment for the competent authority")
    grouped: list[Reference] = Field(
        [], max_length=2000, description="Reference numbers of statements to group"
    )
    force: bool = Field(
        False,
        description="Build the statement although the lot's EUDR readiness lists blockers"
        " (admin role); the override is recorded in the chain, naming them",
    )


def filing_of(query: DdsQuery) -> dds.Filing:
    """The request's filing, for the domain to check."""

    def ids(eori: str | None, more: list[str]) -> tuple[tuple[str, str], ...]:
        pairs = [("eori", eori)] if eori else []
        for item in more:
            kind, value = item.split(":", 1)
            pairs.append((kind, value))
        return tuple(pairs)

    represented = None
    address_given = any(
        (
            query.represented_country,
            query.represented_street,
            query.represented_postal_code,
            query.represented_city,
        )
    )
    if (
        query.represented_name
        or query.represented_eori
        or query.represented_id
        or query.role == "REPRESENTATIVE_OPERATOR"
    ):
        address = (
            dds.Address(
                country=query.represented_country or "",
                street=query.represented_street or "",
                postal_code=query.represented_postal_code or "",
                city=query.represented_city or "",
            )
            if address_given
            else None
        )
        represented = dds.EconomicOperator(
            name=query.represented_name,
            identifiers=ids(query.represented_eori, query.represented_id),
            email=query.represented_email,
            phone=query.represented_phone,
            address=address,
        )
    return dds.Filing(
        activity=query.activity,
        role=query.role,
        operator=dds.EconomicOperator(
            name=query.operator_name, identifiers=ids(query.operator_eori, query.operator_id)
        ),
        represented=represented,
        country_of_activity=query.country,
        border_cross_country=query.border_country,
        geolocation_confidential=query.confidential,
        internal_reference=query.reference,
        comment=query.comment,
        grouped=tuple(query.grouped),
    )


def wants_xml(accept: str | None) -> bool:
    """Whether the Accept header prefers XML to JSON (by q, then by order)."""
    best: tuple[float, int, bool] | None = None
    for i, item in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        xml = media.lower() in (XML, "text/xml")
        if not xml and media.lower() not in (JSON, "application/*", "*/*"):
            continue
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, i, xml)
    return bool(best and best[2])


DDS_HEADERS = {
    "X-DDS-Statements": {
        "description": "How many statements the lot needs (the EU system's limits)",
        "schema": {"type": "integer"},
    },
    "X-DDS-Part": {"description": "Which of them this is", "schema": {"type": "integer"}},
}


@router.get(
    "/lots/{lot_id}/dds",
    tags=["exports"],
    summary="EUDR due diligence statement(s) of the lot (V3 SubmitDdsRequest), JSON or XML",
    description="The statement as the operator files it with the EU Information System:"
    " commodities by product kind with their HS headings and net weights, producers with"
    " their base64 GeoJSON by the EU's rules (the owner's name only with the farm's consent"
    " to give it to the authorities, else the cooperative as producer group). The EU"
    " system's limits (1,000 producers per commodity, 10,000 per statement, 100"
    " commodities, 25 MB of geolocation) split a large lot into several statements: the"
    " JSON holds them all with `split`, the XML one (`part`). `Accept: application/xml` or"
    " `format=xml` gives XML. Needs the operator role: the statement names people.",
    responses={
        200: {
            "description": "JSON: every statement, the split report and warnings of what the"
            " EU system will ask for; XML: one SubmitDdsRequest, valid against the EU's XSDs",
            "content": {
                JSON: {"schema": {"type": "object"}},
                XML: {"schema": {"type": "string"}},
            },
            "headers": DDS_HEADERS,
        },
        422: {
            "model": Error,
            "description": "Invalid parameters, a filing the statement cannot hold (error"
            " `invalid`, the field named: REPRESENTATIVE_OPERATOR without a represented"
            " operator, a border country for DOMESTIC, a `part` beyond the statements...),"
            " or a rule that refuses the lot (error `rule_violation`): it comes from no plot"
            " (`no_producers`), or a plot's stored geometry breaks the EU rules (the rule"
            " named, e.g. `polygon_required`, `cut_duplicate_vertex`), or the lot's EUDR"
            " readiness lists blockers (`eudr_not_ready`, `details.blockers`; see"
            " /v1/lots/{id}/eudr/readiness, `force=true` with the admin role overrides)",
        },
    },
)
def lot_dds(
    lot_id: UUID,
    query: Annotated[DdsQuery, Query()],
    conn: Conn,
    caller: Operator,
    keys: Keys,
    request: Request,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    owned_lot(conn, caller.cooperative_id, lot_id)
    if query.force:
        caller.require("admin")  # an override of the readiness is the admin's to make
    # refused (422 rule_violation eudr_not_ready, the blockers in details) until ready
    eudr_readiness.require_ready(
        conn,
        keys,
        caller.cooperative_id,
        lot_id,
        max_cherry_kg_per_ha=request.app.state.settings.eudr_max_cherry_kg_per_ha,
        force=query.force,
        by=f"api key {caller.key_id}",
    )
    doc = dds.build_dds(
        conn,
        lot_id,
        filing_of(query),
        environment=request.app.state.settings.eudr_environment,
    )
    n = len(doc["statements"])
    headers = {"X-DDS-Statements": str(n)}
    xml = query.format == "xml" or (query.format is None and wants_xml(accept))
    if not xml:
        return JSONResponse(doc, headers=headers)
    part = query.part or 1
    if part > n:
        raise ValidationFailed(
            f"the lot needs {n} statement{'s' if n > 1 else ''}; part {part} does not exist",
            field="part",
            statements=n,
        )
    return Response(
        dds.to_xml(doc["statements"][part - 1]),
        media_type=XML,
        headers={**headers, "X-DDS-Part": str(part)},
    )


router.include_router(routes_plot_files.router)  # POST /v1/plots/import
router.include_router(routes_eudr_evidence.router)  # readiness and screenings
router.include_router(routes_dds_references.router)  # references that travel
