"""Plot and tree geometry rules (EUDR): closed rings, enough positions, no
self-intersection, coordinates inside plausible bounds; point-in-polygon for trees.
Topology (simplicity, containment) is GEOS's, through shapely.

Positions are GeoJSON [longitude, latitude] in WGS84 (RFC 7946).
"""

from __future__ import annotations

import math
from typing import Any

import shapely
import shapely.validation

from coffeetrace.errors import RuleViolation, ValidationFailed

# A single farm plot spanning more than this many degrees (about 50 km) is a data error
# (swapped or mistyped coordinates), not a plot.
MAX_PLOT_SPAN_DEG = 0.5
POINT_MAX_AREA_HA = 4.0  # EUDR: above this, the plot must be described by a polygon
EARTH_RADIUS_M = 6_371_008.8


def _position(p: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(p, list | tuple)
        or len(p) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
    ):
        raise RuleViolation(
            "position_shape", f"{where}: a position is [longitude, latitude]", position=repr(p)[:60]
        )
    lon, lat = float(p[0]), float(p[1])
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise RuleViolation("coordinate_bounds", f"{where}: coordinates must be finite numbers")
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        raise RuleViolation(
            "coordinate_bounds",
            f"{where}: [{lon}, {lat}] is outside longitude -180..180 /"
            " latitude -90..90 (GeoJSON order is [longitude, latitude])",
            lon=lon,
            lat=lat,
        )
    if lon == 0.0 and lat == 0.0:
        raise RuleViolation(
            "coordinate_sanity",
            f"{where}: [0, 0] is a missing position, not a plot",
            lon=lon,
            lat=lat,
        )
    return lon, lat


def _check_ring(ring: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list):
        raise RuleViolation("polygon_shape", f"{where} must be a list of positions")
    if len(ring) < 4:
        raise RuleViolation(
            "polygon_points",
            f"{where} needs at least 4 positions (a closed triangle), got {len(ring)}",
            positions=len(ring),
        )
    pts = [_position(p, where) for p in ring]
    if pts[0] != pts[-1]:
        raise RuleViolation(
            "polygon_closed",
            f"{where} is not closed: the first position {list(pts[0])} differs"
            f" from the last {list(pts[-1])}",
        )
    if len(set(pts[:-1])) < 3:
        raise RuleViolation(
            "polygon_points",
            f"{where} needs at least 3 distinct positions",
            distinct=len(set(pts[:-1])),
        )
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    span = max(max(lons) - min(lons), max(lats) - min(lats))
    if span > MAX_PLOT_SPAN_DEG:
        raise RuleViolation(
            "coordinate_sanity",
            f"{where} spans {span:.3f} degrees (more than {MAX_PLOT_SPAN_DEG}):"
            " not one plot; are longitude and latitude swapped or mistyped?",
            span_deg=round(span, 6),
        )
    # all positions on one line: no area, whatever the ring's shape
    if shapely.MultiPoint(pts).convex_hull.area == 0.0:
        raise RuleViolation("polygon_area", f"{where} encloses no area")
    ring = shapely.LinearRing(pts)
    if not ring.is_simple:
        # GEOS reports where the ring first meets itself
        where_at = shapely.validation.explain_validity(shapely.Polygon(ring))
        raise RuleViolation(
            "polygon_self_intersection", f"{where} crosses itself ({where_at})", detail=where_at
        )
    if ring_area_m2(pts) <= 0.0:
        raise RuleViolation("polygon_area", f"{where} encloses no area")
    return pts


def validate_plot_geometry(geometry: dict[str, Any], area_ha: float | None = None) -> None:
    """Raise RuleViolation naming the broken rule; with area_ha, also require a Polygon
    for plots over 4 ha (EUDR)."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Point", "Polygon"):
        raise RuleViolation("geometry_type", "plot geometry must be a GeoJSON Point or Polygon")
    coords = geometry.get("coordinates")
    if kind == "Point":
        _position(coords, "the Point")
        if area_ha is not None and float(area_ha) > POINT_MAX_AREA_HA:
            raise RuleViolation(
                "polygon_required",
                f"a plot of {area_ha} ha needs a Polygon: EUDR allows a Point"
                f" only up to {POINT_MAX_AREA_HA} ha",
                area_ha=float(area_ha),
            )
        return
    if not isinstance(coords, list) or not coords:
        raise RuleViolation("polygon_shape", "Polygon coordinates must be a list of rings")
    outer = _check_ring(coords[0], "the polygon's outer ring")
    shell = shapely.Polygon(outer)
    for k, hole in enumerate(coords[1:], start=1):
        if not shell.covers(shapely.LinearRing(_check_ring(hole, f"hole {k}"))):
            raise RuleViolation("polygon_hole_outside", f"hole {k} lies outside the outer ring")


def point_in_polygon(lon: float, lat: float, geometry: dict[str, Any]) -> bool:
    """Is the point inside the polygon (its boundary included, its holes excluded)?"""
    rings = [[(float(a), float(b)) for a, b, *_ in ring] for ring in geometry["coordinates"]]
    return bool(shapely.Polygon(rings[0], rings[1:]).covers(shapely.Point(lon, lat)))


def ring_area_m2(ring: list[tuple[float, float]]) -> float:
    """Approximate area of a small ring on the sphere (local equirectangular projection)."""
    lat0 = math.radians(sum(p[1] for p in ring) / len(ring))
    k = math.pi / 180 * EARTH_RADIUS_M
    xy = [(p[0] * k * math.cos(lat0), p[1] * k) for p in ring]
    s = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(xy, xy[1:], strict=False))
    return abs(s) / 2


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def tree_in_plot(lon: float, lat: float, geometry: dict[str, Any], area_ha: float) -> bool:
    """Is a tree's position inside its plot? For a Point plot: within the radius of a
    circle of the plot's area around the point, with 50% slack."""
    if geometry.get("type") == "Polygon":
        return point_in_polygon(lon, lat, geometry)
    c = geometry["coordinates"]
    radius = math.sqrt(float(area_ha) * 10_000 / math.pi) * 1.5
    return distance_m(lon, lat, float(c[0]), float(c[1])) <= radius


def geometry_centroid(geometry: dict[str, Any]) -> tuple[float, float]:
    """(lon, lat) of a Point, or the vertex mean of a Polygon's outer ring."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point" and isinstance(coords, list) and len(coords) >= 2:
        return float(coords[0]), float(coords[1])
    if kind == "Polygon" and isinstance(coords, list) and coords and len(coords[0]) >= 4:
        ring = coords[0][:-1]
        return (
            sum(float(p[0]) for p in ring) / len(ring),
            sum(float(p[1]) for p in ring) / len(ring),
        )
    raise ValidationFailed(
        "geometry must be a GeoJSON Point or Polygon with [lon, lat] positions", field="geometry"
    )
