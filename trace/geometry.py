"""Plot geometry rules (EUDR): closed rings, enough points, no self-intersection,
coordinates inside plausible bounds. Refined by the trace work (issue: Trace)."""

from __future__ import annotations

from typing import Any

from coffeetrace.errors import RuleViolation


def validate_plot_geometry(geometry: dict[str, Any]) -> None:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Point", "Polygon"):
        raise RuleViolation("geometry_type", "plot geometry must be a GeoJSON Point or Polygon")
    if kind == "Polygon":
        rings = geometry.get("coordinates")
        if not isinstance(rings, list) or not rings or not isinstance(rings[0], list):
            raise RuleViolation("polygon_shape", "Polygon coordinates must be a list of rings")
        ring = rings[0]
        if len(ring) < 4:
            raise RuleViolation("polygon_points",
                                f"a polygon ring needs at least 4 positions, got {len(ring)}")
        if ring[0] != ring[-1]:
            raise RuleViolation("polygon_closed",
                                "the polygon ring is not closed: first and last positions differ")
