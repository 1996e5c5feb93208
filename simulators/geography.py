"""Where simulated farms lie: Đắk Lắk's coffee districts, plot polygons and planting grids.

District centres and altitude bands are rounded public figures (district seats and the
basaltic plateau around Buôn Ma Thuột); plots are scattered within a few kilometres of
a centre. Geometry is done in local metres (an equirectangular projection is exact
enough at the scale of a plot) and returned as GeoJSON [lon, lat] with 7 decimals.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# metres per degree of latitude; a degree of longitude is this times cos(latitude)
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0


@dataclass(frozen=True)
class District:
    name: str
    short: str  # used in growing-area codes
    lon: float
    lat: float
    altitude_m: tuple[int, int]


COFFEE_DISTRICTS: tuple[District, ...] = (
    District("Buôn Ma Thuột", "BMT", 108.040, 12.680, (430, 560)),
    District("Cư M'gar", "CMG", 108.080, 12.840, (480, 620)),
    District("Krông Pắc", "KPA", 108.300, 12.700, (420, 540)),
    District("Ea H'leo", "EHL", 108.200, 13.180, (600, 900)),
    District("Krông Năng", "KNA", 108.370, 12.990, (520, 760)),
    District("Cư Kuin", "CKU", 108.120, 12.580, (420, 520)),
    District("Krông Búk", "KBU", 108.220, 12.930, (560, 780)),
    District("Ea Kar", "EKA", 108.450, 12.810, (400, 500)),
)

# Planting grids in use (row x in-row spacing, metres): 1,111 to 1,333 trees/ha.
PLANTING_GRIDS: tuple[tuple[float, float], ...] = ((3.0, 3.0), (3.0, 2.8), (3.0, 2.5))


def grid_density(grid: tuple[float, float]) -> float:
    """Trees per hectare of a planting grid."""
    return 10_000.0 / (grid[0] * grid[1])


def m_per_deg_lon(lat: float) -> float:
    return M_PER_DEG_LON_EQ * math.cos(math.radians(lat))


@dataclass(frozen=True)
class PlotShape:
    """A rotated rectangle (plus a small convex bulge) around a centre, in metres."""

    lon: float
    lat: float
    width_m: float
    height_m: float
    angle_rad: float
    bulge_m: float

    def _to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        xr, yr = x * c - y * s, x * s + y * c
        return (self.lon + xr / m_per_deg_lon(self.lat), self.lat + yr / M_PER_DEG_LAT)

    def ring_m(self) -> list[tuple[float, float]]:
        """Counter-clockwise outer ring in local metres (not closed)."""
        w, h = self.width_m / 2, self.height_m / 2
        # the bulge sits on the north edge and keeps the ring convex
        return [(-w, -h), (w, -h), (w, h), (0.0, h + self.bulge_m), (-w, h)]

    def area_ha(self) -> float:
        ring = self.ring_m()
        edges = zip(ring, ring[1:] + ring[:1], strict=True)
        twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges)
        return abs(twice) / 2 / 10_000

    def geometry(self) -> dict[str, object]:
        ring = [self._to_lonlat(x, y) for x, y in self.ring_m()]
        coords = [[round(lon, 7), round(lat, 7)] for lon, lat in ring]
        coords.append(coords[0])
        return {"type": "Polygon", "coordinates": [coords]}

    def grid_coords(self, grid: tuple[float, float], limit: int | None = None) -> list[str]:
        """Tree positions on the planting grid inside the rectangle, as "lon\tlat" text with
        7 decimals (the bulk path writes them as they are; `grid_points` parses them)."""
        row, inrow = grid
        nx = max(1, int(self.width_m // row))
        ny = max(1, int(self.height_m // inrow))
        x0 = -self.width_m / 2 + row / 2
        y0 = -self.height_m / 2 + inrow / 2
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        klon, klat = 1 / m_per_deg_lon(self.lat), 1 / M_PER_DEG_LAT
        lon0, lat0 = self.lon, self.lat
        xs = [x0 + i * row for i in range(nx)]
        out: list[str] = []
        limit = nx * ny if limit is None else limit
        for j in range(ny):
            y = y0 + j * inrow
            ys, yc = y * s, y * c
            out.extend(
                f"{lon0 + (x * c - ys) * klon:.7f}\t{lat0 + (x * s + yc) * klat:.7f}" for x in xs
            )
            if len(out) >= limit:
                break
        return out[:limit]

    def grid_points(self, grid: tuple[float, float]) -> list[tuple[float, float]]:
        """Tree positions (lon, lat) on the planting grid inside the rectangle."""
        return [(float(a), float(b)) for a, b in (p.split("\t") for p in self.grid_coords(grid))]

    def grid_count(self, grid: tuple[float, float]) -> int:
        return max(1, int(self.width_m // grid[0])) * max(1, int(self.height_m // grid[1]))


def random_plot_shape(rng: random.Random, district: District, area_ha: float) -> PlotShape:
    """A plot of about `area_ha` within ~6 km of the district centre."""
    lon = district.lon + rng.uniform(-0.055, 0.055)
    lat = district.lat + rng.uniform(-0.055, 0.055)
    aspect = rng.uniform(0.6, 1.7)
    rect_m2 = area_ha * 10_000 * 0.97
    width = math.sqrt(rect_m2 * aspect)
    height = rect_m2 / width
    bulge = rng.uniform(0.0, 0.12) * height
    # the bulge triangle adds width*bulge/2; shrink the rectangle so the total matches
    scale = math.sqrt(area_ha * 10_000 / (width * height + width * bulge / 2))
    return PlotShape(
        lon, lat, width * scale, height * scale, rng.uniform(0, math.pi), bulge * scale
    )


def gs1_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit of `digits` (weights 3, 1, 3, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def gtin14(company_prefix: str, item_reference: int, indicator: int = 0) -> str:
    """A GTIN-14 from a GS1 company prefix and an item reference, with its check digit."""
    ref_len = 12 - len(company_prefix)
    body = f"{indicator}{company_prefix}{item_reference:0{ref_len}d}"
    if len(body) != 13:
        raise ValueError("company prefix and item reference do not fit a GTIN-14")
    return body + str(gs1_check_digit(body))
