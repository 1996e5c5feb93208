"""EUDR evidence and readiness (trace/eudr_evidence.py, trace/eudr_readiness.py):
GET /v1/lots/{id}/eudr/readiness, and the plots' risk screening results
(POST /v1/plots/screenings to import a file, POST /v1/plots/{id}/screenings for one entered
by hand, GET /v1/plots/{id}/screenings). Included by routes_dds.router."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from coffeetrace.api.deps import Conn, Keys, Operator, Reader
from coffeetrace.api.routes_lots import owned_lot
from coffeetrace.api.routes_plot_files import Upload, uploaded
from coffeetrace.api.schemas import Error, error_responses
from coffeetrace.errors import ValidationFailed
from coffeetrace.trace import eudr_evidence, eudr_readiness
from coffeetrace.trace.jsonutil import jsonable

router = APIRouter(responses=error_responses(401, 403, 413, 503))


class ScreeningIn(BaseModel):
    """One screening result entered by hand."""

    model_config = ConfigDict(extra="forbid")

    risk: str = Field(
        min_length=1,
        max_length=80,
        description="low, standard or high, or the source's category (medium, high risk...)",
    )
    source: str = Field(min_length=1, max_length=120, description="Whisp, Global Forest Watch...")
    analysis_id: str | None = Field(None, min_length=1, max_length=200)
    analysis_date: date
    note: str = Field(min_length=1, max_length=2000, description="What was looked at, by whom")
    mitigation_note: str | None = Field(
        None, min_length=1, max_length=2000, description="Risk mitigation (needed for high)"
    )
    land_use_note: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Land-use evidence for trees planted after 31 December 2020",
    )


def _who(caller: Any) -> str:
    return f"api key {caller.key_id} ({caller.cooperative_code}, {caller.role})"


def _screening(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = jsonable({k: v for k, v in row.items() if k != "cooperative_id"})
    return out


def _format(upload: Upload) -> str:
    media = (upload.content_type or "").split(";")[0].strip().lower()
    name = (upload.filename or "").lower()
    if media in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "csv"
    if media == "application/json" or name.endswith(".json"):
        return "json"
    raise ValidationFailed(
        "send the screenings as text/csv or application/json (or a multipart part named"
        " 'file' whose name ends .csv or .json)",
        field="file",
    )


@router.get(
    "/lots/{lot_id}/eudr/readiness",
    tags=["exports"],
    summary="EUDR readiness of the lot: per plot, the evidence present and what blocks a DDS",
    description="Per plot the lot came from: its geolocation, trees (share planted on or"
    " before 31 December 2020, earliest planting date), newest risk screening and capacity"
    " (the lot's cherry kg per season against area x COFFEETRACE_EUDR_MAX_CHERRY_KG_PER_HA);"
    " and the blockers: not_geolocated, polygon_missing, not_screened,"
    " high_risk_unmitigated, planted_after_cutoff, volume_above_capacity. GET"
    " /v1/lots/{id}/dds refuses while `ready` is false.",
    responses={404: {"model": Error, "description": "Not a lot of your cooperative"}},
)
def lot_readiness(lot_id: UUID, conn: Conn, caller: Reader, request: Request) -> Any:
    owned_lot(conn, caller.cooperative_id, lot_id)
    return eudr_readiness.readiness(
        conn,
        caller.cooperative_id,
        lot_id,
        max_cherry_kg_per_ha=request.app.state.settings.eudr_max_cherry_kg_per_ha,
    )


@router.post(
    "/plots/screenings",
    tags=["registry"],
    status_code=201,
    summary="Import risk screening results of plots from a CSV or JSON file",
    description="Columns or keys: plot (its code or id), risk (low, standard, high, or the"
    " source's category: medium, high risk, loss...), source, analysis_id, analysis_date"
    " (YYYY-MM-DD), and optionally note, mitigation_note, land_use_note. All or nothing:"
    " one refused row refuses the file (422, `details.errors`: [{row, field, message}])."
    " At most COFFEETRACE_EUDR_SCREENING_MAX_ROWS rows and"
    " COFFEETRACE_EUDR_SCREENING_MAX_BYTES bytes. The import is a signed chain event.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
    responses={422: {"model": Error, "description": "The file or rows refused, each named"}},
)
def import_screenings(
    upload: Annotated[Upload, Depends(uploaded)],
    conn: Conn,
    caller: Operator,
    keys: Keys,
    request: Request,
) -> Any:
    settings = request.app.state.settings
    rows = eudr_evidence.import_screenings(
        conn,
        keys,
        caller.cooperative_id,
        upload.data,
        _format(upload),
        recorded_by=_who(caller),
        max_rows=settings.eudr_screening_max_rows,
        max_bytes=settings.eudr_screening_max_bytes,
    )
    return {"imported": len(rows), "screenings": [_screening(r) for r in rows]}


@router.post(
    "/plots/{plot_id}/screenings",
    tags=["registry"],
    status_code=201,
    summary="Record one risk screening result of a plot, entered by hand with a note",
    responses={
        404: {"model": Error, "description": "Not a plot of your cooperative"},
        422: {"model": Error, "description": "A field refused, named"},
    },
)
def record_screening(
    plot_id: UUID, body: ScreeningIn, conn: Conn, caller: Operator, keys: Keys
) -> Any:
    row = eudr_evidence.record_screening(
        conn,
        keys,
        caller.cooperative_id,
        plot_id,
        body.model_dump(mode="json"),
        recorded_by=_who(caller),
    )
    return _screening(row)


@router.get(
    "/plots/{plot_id}/screenings",
    tags=["registry"],
    summary="The plot's risk screening results, newest first",
    responses={404: {"model": Error, "description": "Not a plot of your cooperative"}},
)
def list_screenings(plot_id: UUID, conn: Conn, caller: Reader) -> Any:
    rows = eudr_evidence.plot_screenings(conn, caller.cooperative_id, plot_id)
    return {"screenings": [_screening(r) for r in rows]}
