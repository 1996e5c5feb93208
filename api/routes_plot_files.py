"""POST /v1/plots/import: plots registered or updated from a GeoJSON, KML or GPX file as
field teams record them (a phone's GPS walk), checked by the registry's and the EU's rules
before any is written (trace/plot_files.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from coffeetrace.api.deps import Conn, Keys, Operator
from coffeetrace.api.schemas import Error, error_responses
from coffeetrace.errors import ValidationFailed
from coffeetrace.trace import plot_files

# included by routes_dds.router, under its /v1 (one router for app.py to include)
router = APIRouter(responses=error_responses(401, 403, 409, 413, 503))


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str | None
    filename: str | None


async def uploaded(request: Request) -> Upload:
    """The file: the part named `file` of a multipart body, or the whole body with its
    Content-Type (the body limit of api/hardening.py applies to both)."""
    content_type = request.headers.get("content-type")
    if (content_type or "").lower().startswith("multipart/form-data"):
        try:
            # closed on leaving: the parts' spooled temporary files go with it
            async with request.form(max_files=1, max_fields=10) as form:
                part = form.get("file")
                if not isinstance(part, UploadFile):
                    raise ValidationFailed(
                        "a multipart body carries the file in a part named 'file'", field="file"
                    )
                return Upload(await part.read(), part.content_type, part.filename)
        except HTTPException as exc:  # Starlette's 400 for a malformed multipart body
            raise ValidationFailed(
                f"the multipart body cannot be read: {exc.detail} (send one part named 'file')",
                field="file",
            ) from None
    return Upload(await request.body(), content_type, None)


class ImportedPlot(BaseModel):
    feature: str = Field(description="The feature, placemark, track or waypoint of the file")
    code: str
    plot_id: UUID
    farm_id: UUID
    action: str = Field(description="created, updated (a new registry version) or unchanged")
    source: str = Field(description="What the file held: Polygon, Point, GPS walk (GPX track)...")
    geometry_type: str = Field(description="What was registered: Point or Polygon")
    area_ha: float
    export_kind: str = Field(
        description="How the EUDR export gives it: Point (up to 4 ha) or Polygon"
    )


class PlotImport(BaseModel):
    created: int
    updated: int
    unchanged: int
    plots: list[ImportedPlot]


FILE_TYPES = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    },
    "application/geo+json": {"schema": {"type": "object"}},
    "application/vnd.google-earth.kml+xml": {"schema": {"type": "string"}},
    "application/gpx+xml": {"schema": {"type": "string"}},
}


@router.post(
    "/plots/import",
    response_model=PlotImport,
    tags=["registry"],
    summary="Register or update plots from a GeoJSON, KML or GPX file",
    description="Each Feature, Placemark, GPX track, route or waypoint is a plot: its code"
    " (`PlotCode` or its name), its farm (`FarmCode`, else `farm`), a Point with its `Area`"
    " in ha or a Polygon (a GPS walk around the plot, closed within 50 m, is its outline)."
    " A plot whose code is registered gets the file's outline as a new registry version. All"
    " or nothing: one refused plot refuses the file (422, every refusal named with its"
    " feature and rule). The body is the file (its Content-Type, or a file name ending"
    " .geojson, .kml, .gpx in a multipart part named `file`).",
    openapi_extra={"requestBody": {"required": True, "content": FILE_TYPES}},
    responses={
        404: {"model": Error, "description": "`farm` is not one of your cooperative's farms"},
        422: {
            "model": Error,
            "description": "Not a GeoJSON, KML or GPX file, or one with no plot (error"
            " `invalid`, field `file`); or plots refused (error `rule_violation`, rule"
            " `plot_file`, `details.refusals`: [{feature, index, code, rule, message}]): by"
            " the registry's geometry rules (`polygon_self_intersection`, `polygon_required`,"
            " ...), the EU's (`cut_duplicate_vertex`, `point_area_missing`,"
            " `area_not_a_number`, `geometry_type`, ...), a walk that does not come back"
            " (`walk_not_closed`), or the registry (`farm_unknown`, `farm_missing`,"
            " `plot_farm_mismatch`, `duplicate_plot_code`)",
        },
    },
)
def import_plots(
    upload: Annotated[Upload, Depends(uploaded)],
    conn: Conn,
    caller: Operator,
    keys: Keys,
    farm: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
            description="Code of the farm of the file's new plots that name none",
        ),
    ] = None,
) -> Any:
    return plot_files.import_plots(
        conn,
        caller.cooperative_id,
        upload.data,
        keys=keys,
        content_type=upload.content_type,
        filename=upload.filename,
        farm_code=farm,
    )
