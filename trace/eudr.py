"""EUDR geolocation export: GeoJSON FeatureCollection of the plots that fed a lot.

The EU information system takes RFC 7946 GeoJSON ([longitude, latitude], WGS84) with
at least 6 decimals; a polygon is required for plots over 4 ha, a point (with its
area) is allowed up to 4 ha.
"""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn
from coffeetrace.errors import RuleViolation
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.genealogy import trace_backward
from coffeetrace.trace.geometry import POINT_MAX_AREA_HA, validate_plot_geometry

SQL = load_queries("coffeetrace.trace", "exports.sql")

DECIMALS = 6


def _round(pos: list[Any]) -> list[float]:
    return [round(float(pos[0]), DECIMALS), round(float(pos[1]), DECIMALS)]


def producer_name(plot: dict[str, Any]) -> str:
    """The producer's name as the operator declares it: the owner's name when the farmer
    consented to sharing data (and did not withdraw), else the consented display name,
    else the farm's pseudonymous code."""
    if plot["owner_name"] and plot["data_consent"] and not plot["consent_withdrawn_at"]:
        return str(plot["owner_name"])
    if plot["display_name"] and plot["display_name_consent"]:
        return str(plot["display_name"])
    return str(plot["farm_code"])


def plot_feature(plot: dict[str, Any], share: float | None = None) -> dict[str, Any]:
    """One plot as an EUDR Feature (Polygon above 4 ha, else Point with Area)."""
    geometry = plot["geometry"]
    validate_plot_geometry(geometry, float(plot["area_ha"]))
    area = float(plot["area_ha"])
    place = ", ".join(
        x
        for x in (
            plot["code"],
            plot["commune"],
            plot["district"] or plot["farm_district"],
            plot["province"],
        )
        if x
    )
    props: dict[str, Any] = {
        "ProducerName": producer_name(plot),
        "ProducerCountry": str(plot["country"]).strip().upper(),
        "ProductionPlace": place,
    }
    geom: dict[str, Any]
    if area > POINT_MAX_AREA_HA:
        geom = {
            "type": "Polygon",
            "coordinates": [[_round(p) for p in ring] for ring in geometry["coordinates"]],
        }
    else:
        if geometry["type"] == "Point":
            centre = _round(geometry["coordinates"])
        else:
            centre = _round([plot["centroid_lon"], plot["centroid_lat"]])
        geom = {"type": "Point", "coordinates": centre}
        props["Area"] = round(area, 4)
    if plot["growing_area_code"]:
        props["GrowingAreaCode"] = plot["growing_area_code"]
    props["PlotCode"] = plot["code"]
    if share is not None:
        props["Share"] = round(share, 6)
    return {"type": "Feature", "geometry": geom, "properties": props}


def export_eudr(conn: DbConn, lot_id: UUID) -> dict[str, Any]:
    """{"type": "FeatureCollection", "features": [{"type": "Feature",
      "geometry": Polygon (plots > 4 ha) or Point (centroid, plots <= 4 ha),
      "properties": {"ProducerName", "ProducerCountry" (ISO alpha-2), "ProductionPlace",
                     "Area" (ha, Points only), "PlotCode", "GrowingAreaCode"?, "Share"}}]}
    Coordinates [lon, lat] rounded to 6 decimals; `dumps` writes them with 6 decimals.
    Stored plots are re-checked against the geometry rules (RuleViolation otherwise)."""
    trace = trace_backward(conn, lot_id)
    shares = {p["plot_id"]: p["share"] for p in trace["plots"]}
    plots = q.rows(conn, SQL["plots_for_export"], {"ids": list(shares)})
    return {
        "type": "FeatureCollection",
        "features": [plot_feature(p, shares[p["id"]]) for p in plots],
    }


_COORD = re.compile(r'"__coord__(-?\d+(?:\.\d+)?(?:e-?\d+)?)"')


def dumps(collection: dict[str, Any], *, indent: int | None = None) -> str:
    """JSON text of an export with every coordinate written with exactly 6 decimals
    (json writes 108.05 as "108.05", which reads as too little precision)."""

    def mark(value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, float | int) for v in value):
            return [f"__coord__{float(v):.{DECIMALS}f}" for v in value]
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    features = []
    for f in collection["features"]:
        geom = dict(f["geometry"], coordinates=mark(f["geometry"]["coordinates"]))
        features.append(dict(f, geometry=geom))
    text = json.dumps(dict(collection, features=features), ensure_ascii=False, indent=indent)
    return _COORD.sub(lambda m: m.group(1), text)


def plots_status(plots: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether every plot of a lot has the geolocation the EUDR asks for (a polygon above
    4 ha, a point or a polygon up to it: geometry.validate_plot_geometry's rule), for the
    public page: {"ok", "plots", "polygons", "problems": [{"plot", "problem"}]}."""
    problems = []
    for plot in plots:
        try:
            validate_plot_geometry(plot["geometry"], plot["area_ha"])
        except RuleViolation as exc:
            problems.append(
                {
                    "plot": plot["code"],
                    "problem": "polygon_required"
                    if exc.rule == "polygon_required"
                    else exc.message,
                }
            )
    return {
        "ok": bool(plots) and not problems,
        "plots": len(plots),
        "polygons": sum(1 for p in plots if p["geometry"].get("type") == "Polygon"),
        "problems": problems,
    }
