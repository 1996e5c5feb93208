"""Inline SVG for the public pages: the origin map and the growing-conditions charts.

Everything is drawn on the server in a few kilobytes, so the page needs no script, no
tile server and no request leaving it. Coordinates are rounded to 0.1 px to keep it small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

MAP_W = 320.0


def _rings(geometry: dict[str, Any]) -> list[list[tuple[float, float]]]:
    if geometry.get("type") == "Polygon":
        return [[(float(p[0]), float(p[1])) for p in ring] for ring in geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return [
            [(float(p[0]), float(p[1])) for p in ring]
            for poly in geometry["coordinates"]
            for ring in poly
        ]
    return []


def origin_map(
    plots: Sequence[dict[str, Any]], trees: Sequence[tuple[float, float]], title: str
) -> str | None:
    """Plot outlines (or markers for point plots) and tree points, north up."""
    points: list[tuple[float, float]] = list(trees)
    for plot in plots:
        for ring in _rings(plot["geometry"]):
            points.extend(ring)
        points.append((plot["centroid_lon"], plot["centroid_lat"]))
    if not points:
        return None
    min_lon = min(p[0] for p in points)
    max_lon = max(p[0] for p in points)
    min_lat = min(p[1] for p in points)
    max_lat = max(p[1] for p in points)
    kx = math.cos(math.radians((min_lat + max_lat) / 2))
    span_x = max((max_lon - min_lon) * kx, 1e-5)
    span_y = max(max_lat - min_lat, 1e-5)
    pad = 12.0
    scale = (MAP_W - 2 * pad) / max(span_x, span_y * 1.0)
    height = min(max(span_y * scale + 2 * pad, 120.0), 360.0)
    scale = min(scale, (height - 2 * pad) / span_y)
    off_x = (MAP_W - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2

    def xy(lon: float, lat: float) -> str:
        x = off_x + (lon - min_lon) * kx * scale
        y = off_y + (max_lat - lat) * scale
        return f"{x:.1f} {y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {MAP_W:.0f} {height:.0f}" '
        f'role="img" class="map"><title>{escape(title)}</title>'
        f'<rect width="100%" height="100%" fill="#eef3e8"/>'
    ]
    for plot in plots:
        rings = _rings(plot["geometry"])
        if rings:
            d = "".join("M" + "L".join(xy(*p) for p in ring) + "Z" for ring in rings)
            parts.append(f'<path d="{d}" fill="#cfe0bf" stroke="#4d6b34" stroke-width="1.5"/>')
        else:
            c = xy(plot["centroid_lon"], plot["centroid_lat"])
            parts.append(
                f'<path d="M{c}h0" stroke="#4d6b34" stroke-width="14" '
                f'stroke-linecap="square" fill="none"/>'
            )
    if trees:
        # One path of zero-length segments with round caps: a dot per tree in ~12 bytes.
        d = "".join(f"M{xy(lon, lat)}h0" for lon, lat in trees)
        parts.append(
            f'<path d="{d}" stroke="#8a3b12" stroke-width="3.5" '
            f'stroke-linecap="round" fill="none"/>'
        )
    for plot in plots:
        x, y = xy(plot["centroid_lon"], plot["centroid_lat"]).split()
        parts.append(
            f'<text x="{x}" y="{float(y) - 9:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#253a17">{escape(plot["code"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def chart(
    series: Sequence[tuple[datetime, float]],
    *,
    title: str,
    unit: str,
    bars: bool,
    color: str,
    month_names: Sequence[str],
    number: Callable[[float], str] = lambda v: f"{v:.0f}",
) -> str | None:
    """A small weekly chart: bars (rain) or a line (moisture, temperature). `number`
    writes an axis value in the page's locale (render.py passes babel's)."""
    if not series:
        return None
    w, h, left, right, top, bottom = 320.0, 120.0, 34.0, 6.0, 8.0, 18.0
    values = [v for _, v in series]
    lo = 0.0 if bars else min(values)
    hi = max(values)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    n = len(series)
    step = (w - left - right) / max(n, 1)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (h - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
        f'class="chart"><title>{escape(title)}</title>',
        f'<path d="M{left} {top}V{h - bottom}H{w - right}" stroke="#999" fill="none"/>',
        f'<text x="{left - 3}" y="{top + 8}" text-anchor="end" font-size="9">'
        f"{escape(number(hi))}</text>",
        f'<text x="{left - 3}" y="{h - bottom}" text-anchor="end" font-size="9">'
        f"{escape(number(lo))}</text>",
        f'<text x="{left - 3}" y="{(top + h - bottom) / 2 + 3}" text-anchor="end" '
        f'font-size="9">{escape(unit)}</text>',
    ]
    if bars:
        d = "".join(
            f"M{left + (i + 0.5) * step:.1f} {h - bottom:.1f}V{y(v):.1f}"
            for i, v in enumerate(values)
        )
        out.append(
            f'<path d="{d}" stroke="{color}" stroke-width="{max(step * 0.7, 1):.1f}" fill="none"/>'
        )
    else:
        d = "M" + "L".join(
            f"{left + (i + 0.5) * step:.1f} {y(v):.1f}" for i, v in enumerate(values)
        )
        out.append(f'<path d="{d}" stroke="{color}" stroke-width="2" fill="none"/>')
    last_month, last_x = None, -100.0
    for i, (when, _) in enumerate(series):
        x = left + i * step
        if when.month != last_month:
            last_month = when.month
            if x - last_x >= 24:
                out.append(
                    f'<text x="{x:.1f}" y="{h - 5}" font-size="9">'
                    f"{escape(month_names[when.month - 1])}</text>"
                )
                last_x = x
    out.append("</svg>")
    return "".join(out)
