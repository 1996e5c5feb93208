"""EUDR geolocation by the EU's rules: the GeoJSON of the plots that fed a lot, for `export
eudr` and for each producer of a due diligence statement (trace/dds.py). One implementation
of the file description (version 1.3, "§9" of the EU Operator API Reference):

- positions are [longitude, latitude] in WGS 84, cut (truncated toward zero, as the EU
  system stores them) to 6 decimals and written with exactly 6;
- vertices that coincide after the cut are dropped when adjacent; a ring that the cut
  leaves with coinciding vertices, crossing itself or without area is refused, naming the
  plot (RuleViolation `cut_duplicate_vertex`, `cut_self_intersection`, `cut_collapsed`);
- no holes: a polygon with inner rings is cut through each hole into hole-free polygons,
  each a Feature of its own (a MultiPolygon of pieces that share an edge is not valid);
- a plot above 4 ha is a Polygon; up to 4 ha a Point on the plot with a numeric `Area` in
  hectares between 0.0001 and 4 (`export_kind`);
- properties `ProducerName`, `ProducerCountry` (ISO 3166-1 alpha-2), `ProductionPlace`,
  `Area`, in that case; `export eudr` adds `PlotCode`, `GrowingAreaCode` and `Share`,
  which the EU system ignores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

import shapely
import shapely.ops
import shapely.validation

from coffeetrace.db import DbConn
from coffeetrace.errors import RuleViolation
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.genealogy import trace_backward
from coffeetrace.trace.geometry import POINT_MAX_AREA_HA, ring_area_m2, validate_plot_geometry

SQL = load_queries("coffeetrace.trace", "exports.sql")

DECIMALS = 6
_QUANTUM = Decimal(1).scaleb(-DECIMALS)
_NOISE = Decimal(1).scaleb(-9)
AREA_MIN_HA = 0.0001  # the EU system's smallest point area (§9.3 note 2)
EU_PROPERTIES = ("ProducerName", "ProducerCountry", "ProductionPlace", "Area")


def cut(value: float) -> float:
    """The coordinate truncated toward zero to 6 decimals (§9.3 note 1, §10.3). Through
    the shortest decimal text of the float: 108.041213 stays 108.041213, where float
    arithmetic (108.041213 * 1e6 = 108041212.99999999) would lose its last digit. Float
    noise below a nanodegree (0.1 mm) is rounded away first: 12.68 + 0.03, which a float
    holds as 12.709999999999999, is 12.71, not 12.709999."""
    text = Decimal(repr(float(value))).quantize(_NOISE, rounding=ROUND_HALF_EVEN)
    return float(text.quantize(_QUANTUM, rounding=ROUND_DOWN))


def cut_position(position: Sequence[Any]) -> list[float]:
    """[longitude, latitude] cut to 6 decimals; an altitude is dropped."""
    return [cut(position[0]), cut(position[1])]


def cut_ring(ring: Sequence[Sequence[Any]], where: str) -> list[list[float]]:
    """A closed ring cut to 6 decimals without adjacent duplicates. RuleViolation naming
    `where` when the cut leaves fewer than 3 distinct vertices or no area
    (`cut_collapsed`), two vertices that coincide (`cut_duplicate_vertex`) or crossing
    edges (`cut_self_intersection`): the EU system would refuse it (§9.5 items 1, 7)."""
    points: list[tuple[float, float]] = []
    for p in ring:
        here = (cut(p[0]), cut(p[1]))
        if not points or points[-1] != here:
            points.append(here)
    if points[0] != points[-1]:
        points.append(points[0])
    distinct = points[:-1]
    if len(distinct) < 3:
        raise RuleViolation(
            "cut_collapsed",
            f"{where}: cut to {DECIMALS} decimals, the ring keeps {len(distinct)} distinct"
            " vertices, too few for a polygon",
            where=where,
        )
    if len(set(distinct)) < len(distinct):
        twice = next(p for p in distinct if distinct.count(p) > 1)
        raise RuleViolation(
            "cut_duplicate_vertex",
            f"{where}: cut to {DECIMALS} decimals, two vertices of the ring coincide at"
            f" {list(twice)}; move or drop one (the EU system refuses duplicate vertices)",
            where=where,
            position=list(twice),
        )
    if shapely.Polygon(points).area == 0.0:
        raise RuleViolation(
            "cut_collapsed",
            f"{where}: cut to {DECIMALS} decimals, the ring encloses no area",
            where=where,
        )
    line = shapely.LinearRing(points)
    if not line.is_simple:
        raise RuleViolation(
            "cut_self_intersection",
            f"{where}: cut to {DECIMALS} decimals, the ring crosses itself"
            f" ({shapely.validation.explain_validity(shapely.Polygon(line))})",
            where=where,
        )
    return [list(p) for p in points]


def _hole_free(polygon: Any) -> list[Any]:
    """The polygon cut into pieces without holes: a vertical line through a point inside
    its first hole splits it (and every other hole the line crosses); pieces that still
    have holes are cut again. The pieces cover the polygon, holes excluded."""
    if not polygon.interiors:
        return [polygon]
    inside_hole = shapely.Polygon(polygon.interiors[0]).representative_point()
    _, miny, _, maxy = polygon.bounds
    line = shapely.LineString([(inside_hole.x, miny - 1.0), (inside_hole.x, maxy + 1.0)])
    pieces: list[Any] = []
    for piece in shapely.ops.split(polygon, line).geoms:
        pieces.extend(_hole_free(piece))
    return pieces


def eu_polygons(geometry: dict[str, Any], where: str) -> list[list[list[float]]]:
    """The outer rings of the hole-free polygons that describe a stored Polygon by the EU
    rules (one ring without holes; several pieces with holes, §9.2 note, §9.5 item 3),
    counter-clockwise, cut to 6 decimals (cut_ring's refusals otherwise)."""
    rings = geometry["coordinates"]
    if len(rings) == 1:
        outer = [(float(p[0]), float(p[1])) for p in rings[0]]
        return [cut_ring(_counter_clockwise(outer), where)]
    shape = shapely.Polygon(rings[0], rings[1:])
    pieces = sorted(_hole_free(shape), key=lambda g: (g.bounds[0], g.bounds[1]))
    return [
        cut_ring(
            _counter_clockwise(list(piece.exterior.coords)),
            f"{where}, part {i} of {len(pieces)}",
        )
        for i, piece in enumerate(pieces, start=1)
    ]


def _counter_clockwise(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """RFC 7946's winding for an outer ring."""
    return ring if shapely.LinearRing(ring).is_ccw else list(reversed(ring))


def measured_area_ha(geometry: dict[str, Any]) -> float:
    """The area a Polygon encloses (holes excluded), in ha; 0 for a Point."""
    if geometry.get("type") != "Polygon":
        return 0.0
    rings = [[(float(p[0]), float(p[1])) for p in ring] for ring in geometry["coordinates"]]
    return (ring_area_m2(rings[0]) - sum(ring_area_m2(r) for r in rings[1:])) / 10_000


def export_kind(plot: dict[str, Any]) -> str:
    """How the export describes a plot: "Polygon" above 4 ha, by its declared area or by
    the area its polygon encloses, else "Point" (with its Area), whatever the stored
    geometry (a polygon up to 4 ha is exported as a point on it)."""
    area = max(float(plot["area_ha"]), measured_area_ha(plot["geometry"]))
    return "Polygon" if area > POINT_MAX_AREA_HA else "Point"


def eu_point(plot: dict[str, Any]) -> list[float]:
    """The Point of a plot up to 4 ha: its own position, or for a polygon its stored
    centroid when that lies on the plot, else a point inside it (the centroid of a
    crescent or ring-shaped plot is off the plot); cut to 6 decimals."""
    geometry = plot["geometry"]
    if geometry["type"] == "Point":
        return cut_position(geometry["coordinates"])
    rings = geometry["coordinates"]
    shape = shapely.Polygon(rings[0], rings[1:])
    centre = shapely.Point(float(plot["centroid_lon"]), float(plot["centroid_lat"]))
    if not shape.covers(centre):
        centre = shape.representative_point()
    return [cut(centre.x), cut(centre.y)]


def point_area(plot: dict[str, Any]) -> float:
    """The `Area` of a Point, a JSON number of hectares between 0.0001 and 4 (§9.3 note 2:
    a string counts as 0, an absent Area as 4 ha)."""
    area = round(float(plot["area_ha"]), 4)
    if not AREA_MIN_HA <= area <= POINT_MAX_AREA_HA:
        raise RuleViolation(
            "point_area",
            f"plot {plot['code']}: a Point's Area must be {AREA_MIN_HA} to"
            f" {POINT_MAX_AREA_HA:g} ha, not {area}",
            plot=plot["code"],
            area_ha=area,
        )
    return area


def check_plot(plot: dict[str, Any]) -> str:
    """The geometry rules of the registry (geometry.validate_plot_geometry) and of the EU
    (the 6-decimal cut, holes, Area) for a plot {"code", "geometry", "area_ha",
    "centroid_lon", "centroid_lat"}: its export_kind, or RuleViolation naming the rule."""
    validate_plot_geometry(plot["geometry"], float(plot["area_ha"]))
    kind = export_kind(plot)
    if kind == "Polygon":
        eu_polygons(plot["geometry"], f"plot {plot['code']}")
    else:
        point_area(plot)
        eu_point(plot)
    return kind


def production_place(plot: dict[str, Any]) -> str:
    """Plot code, commune, district and province, as far as they are known."""
    district = plot.get("district") or plot.get("farm_district")
    parts = (plot["code"], plot.get("commune"), district, plot.get("province"))
    return ", ".join(str(x) for x in parts if x)


def plot_features(
    plot: dict[str, Any], producer: str, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A plot as EUDR Features: one Point with Area up to 4 ha, else one Polygon per
    hole-free piece (one for a plot without holes); properties in the EU's case, then
    `extra` ones. Stored plots are checked again (check_plot's RuleViolation)."""
    validate_plot_geometry(plot["geometry"], float(plot["area_ha"]))
    props: dict[str, Any] = {
        "ProducerName": producer,
        "ProducerCountry": str(plot["country"]).strip().upper(),
        "ProductionPlace": production_place(plot),
    }
    if export_kind(plot) == "Point":
        point = {"type": "Point", "coordinates": eu_point(plot)}
        return [
            {
                "type": "Feature",
                "geometry": point,
                "properties": {**props, "Area": point_area(plot), **(extra or {})},
            }
        ]
    rings = eu_polygons(plot["geometry"], f"plot {plot['code']}")
    features = []
    for i, ring in enumerate(rings, start=1):
        part = dict(props)
        if len(rings) > 1:
            part["ProductionPlace"] = f"{props['ProductionPlace']} (part {i} of {len(rings)})"
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {**part, **(extra or {})},
            }
        )
    return features


def producer_name(plot: dict[str, Any]) -> str:
    """The producer `export eudr` names: the owner's name when the farmer consented to
    sharing data (and did not withdraw), else the consented display name, else the farm's
    pseudonymous code. A due diligence statement names producers by its own rule
    (dds.producer_of: consent to the authorities, else the cooperative)."""
    if plot["owner_name"] and plot["data_consent"] and not plot["consent_withdrawn_at"]:
        return str(plot["owner_name"])
    if plot["display_name"] and plot["display_name_consent"]:
        return str(plot["display_name"])
    return str(plot["farm_code"])


def export_eudr(conn: DbConn, lot_id: UUID) -> dict[str, Any]:
    """{"type": "FeatureCollection", "features": [{"type": "Feature",
      "geometry": Polygon (plots above 4 ha; one per hole-free piece) or Point (on the
                  plot, plots up to 4 ha),
      "properties": {"ProducerName", "ProducerCountry" (ISO alpha-2), "ProductionPlace",
                     "Area" (ha, Points only), "PlotCode", "GrowingAreaCode"?, "Share"}}]}
    by the EU rules of this module; `dumps` writes the coordinates with 6 decimals.
    Stored plots are checked again (RuleViolation naming the plot and the rule)."""
    trace = trace_backward(conn, lot_id)
    shares = {p["plot_id"]: p["share"] for p in trace["plots"]}
    plots = q.rows(conn, SQL["plots_for_export"], {"ids": list(shares)})
    features = []
    for plot in plots:
        extra: dict[str, Any] = {}
        if plot["growing_area_code"]:
            extra["GrowingAreaCode"] = plot["growing_area_code"]
        extra["PlotCode"] = plot["code"]
        extra["Share"] = round(shares[plot["id"]], 6)
        features.extend(plot_features(plot, producer_name(plot), extra))
    return {"type": "FeatureCollection", "features": features}


_COORD = re.compile(r'"__coord__(-?\d+(?:\.\d+)?(?:e-?\d+)?)"')


def dumps(collection: dict[str, Any], *, indent: int | None = None, compact: bool = False) -> str:
    """JSON text of a FeatureCollection with every coordinate written with exactly 6
    decimals (json writes 108.05 as "108.05", which reads as too little precision);
    `compact`: without spaces (the base64 GeoJSON of a statement)."""

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
    separators = (",", ":") if compact else None
    text = json.dumps(
        dict(collection, features=features),
        ensure_ascii=False,
        indent=indent,
        separators=separators,
    )
    return _COORD.sub(lambda m: m.group(1), text)


def plots_status(plots: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether every plot of a lot has the geolocation the EUDR asks for (check_plot: a
    polygon above 4 ha, a point or a polygon up to it, and a shape that survives the EU's
    6-decimal cut), and how the export holds the plots that have it (export_kind), for
    the public page: {"ok", "plots", "points" (exported as a Point with Area), "polygons",
    "point_max_area_ha", "problems": [{"plot", "problem"}]}."""
    problems = []
    kinds: list[str] = []
    for plot in plots:
        try:
            kinds.append(check_plot(plot))
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
        "points": kinds.count("Point"),
        "polygons": kinds.count("Polygon"),
        "point_max_area_ha": POINT_MAX_AREA_HA,
        "problems": problems,
    }
