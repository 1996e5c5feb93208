"""The deterministic plan of a simulated cooperative: farms, plots, trees and devices.

A plan is pure data computed from a `WorldSpec` (and its seed): the same spec gives the
same farms, polygons, trees and device ids every time, on any machine. Seeding writes a
plan into the registry; the fleet reads it to know what each device measures. Trees are
generated lazily per plot so that a million-tree plan costs nothing until it is seeded.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from coffeetrace.simulators.geography import (
    COFFEE_DISTRICTS,
    PLANTING_GRIDS,
    District,
    PlotShape,
    gtin14,
    random_plot_shape,
)

CULTIVARS: tuple[str, ...] = ("TR4", "TR9", "TR11", "TRS1")
CULTIVAR_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.2, 0.2)

FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Võ",
    "Đặng",
    "Bùi",
    "Niê",
    "Êban",
    "Mlô",
    "Byă",
    "Ksor",
    "Adrơng",
)
MIDDLE = ("Văn", "Thị", "Đình", "Hữu", "Minh", "Ngọc", "Quang", "Thanh")
GIVEN = (
    "Hùng",
    "Lan",
    "Mai",
    "Tuấn",
    "Thảo",
    "Dũng",
    "Hoa",
    "Phúc",
    "Hạnh",
    "Khánh",
    "Sương",
    "Bình",
    "Y Phôn",
    "H'Linh",
    "Thuận",
    "Nhung",
)
COMMUNES = (
    "Ea Tu",
    "Hòa Thuận",
    "Ea Kiết",
    "Quảng Tiến",
    "Ea Yông",
    "Ea Sol",
    "Phú Lộc",
    "Ea Bhốk",
    "Pơng Drang",
    "Cư Huê",
    "Ea Kênh",
    "Hòa Đông",
)
DISPLAY_PREFIX = ("Vườn", "Nông trại", "Rẫy")


@dataclass(frozen=True)
class WorldSpec:
    """What to simulate. Everything else follows from these fields and the seed."""

    coop_code: str = "demo-ea-tu"
    coop_name: str = "Hợp tác xã Cà phê Ea Tu (demo)"
    seed: int = 2025
    farms: int = 8
    # when set, farms are added until the plan holds exactly this many trees
    trees: int | None = None
    mean_farm_ha: float = 1.5
    # trees per plot that get per-tree harvest records (a sample; the rest are registered only)
    harvest_trees_per_plot: int = 60
    consent_share: float = 0.35
    phone_share: float = 0.4
    gs1_company_prefix: str = "8936051"
    districts: tuple[str, ...] = ()
    season_year: int = 2025


@dataclass(frozen=True)
class TreePlan:
    tag_code: str
    lon: float
    lat: float
    cultivar: str
    planted_on: date
    status: str


@dataclass(frozen=True)
class DevicePlan:
    id: str
    kind: str  # soil_node, weather_station, harvest_scale, phone
    farm_code: str
    plot_code: str
    district: str
    altitude_m: int
    ts_format: str  # "iso" (local +07:00) or "epoch_ms"
    firmware: str


@dataclass
class PlotPlan:
    code: str
    farm_code: str
    index: int  # global plot number in the plan
    district: District
    shape: PlotShape
    area_ha: float
    altitude_m: int
    grid: tuple[float, float]
    cultivar: str
    planted_year: int
    management: float  # farm management factor on yields
    growing_area_code: str
    tree_count: int
    seed: int
    sample_size: int = 0  # trees that get per-tree harvest records

    @cached_property
    def geometry(self) -> dict[str, object]:
        return self.shape.geometry()

    def tree_rows(self) -> Iterator[tuple[str, str, str, str, str]]:
        """The plot's trees as text: (tag_code, "lon\tlat", cultivar, planted_on, status),
        row by row on its planting grid (deterministic; the bulk path writes these)."""
        rng = random.Random(f"{self.seed}:trees:{self.code}")
        draw = rng.random
        others = [c for c in CULTIVARS if c != self.cultivar]
        # planting happens early in the rainy season: May-July, or June-July for replants
        first = min(max(self.planted_year + 3, 2014), 2022)
        original = [f"{self.planted_year}-{m:02d}-{d:02d}" for m in (5, 6, 7) for d in range(1, 29)]
        replant = [
            f"{y}-{m:02d}-{d:02d}" for y in range(first, 2023) for m in (6, 7) for d in range(1, 29)
        ]
        prefix = f"T-{self.index:05d}-"
        for n, coords in enumerate(self.shape.grid_coords(self.grid, self.tree_count), start=1):
            if draw() < 0.18:  # replanted or grafted with a newer clone
                cultivar = others[int(draw() * 3)] if draw() < 0.6 else self.cultivar
                planted = replant[int(draw() * len(replant))]
            else:
                cultivar = self.cultivar
                planted = original[int(draw() * len(original))]
            s = draw()
            status = "active" if s >= 0.018 else "dead" if s < 0.008 else "stumped"
            yield f"{prefix}{n:04d}", coords, cultivar, planted, status

    def trees(self) -> Iterator[TreePlan]:
        """The plot's trees (the same as `tree_rows`, as values)."""
        for tag, coords, cultivar, planted, status in self.tree_rows():
            lon, lat = coords.split("\t")
            yield TreePlan(
                tag, float(lon), float(lat), cultivar, date.fromisoformat(planted), status
            )

    def harvest_sample(self) -> list[int]:
        """1-based tree numbers that get per-tree harvest records."""
        return harvest_sample(self.seed, self.code, self.tree_count, self.sample_size)


def harvest_sample(seed: int, plot_code: str, tree_count: int, size: int) -> list[int]:
    rng = random.Random(f"{seed}:sample:{plot_code}")
    return sorted(rng.sample(range(1, tree_count + 1), min(size, tree_count)))


@dataclass
class FarmPlan:
    index: int
    code: str
    display_name: str | None
    consent: bool
    district: District
    commune: str
    owner_name: str
    phone: str
    plots: list[PlotPlan] = field(default_factory=list)
    pickers: tuple[str, ...] = ()

    @property
    def area_ha(self) -> float:
        return sum(p.area_ha for p in self.plots)


@dataclass(frozen=True)
class ProductPlan:
    name: str
    kind: str
    gtin: str


@dataclass
class WorldPlan:
    spec: WorldSpec
    farms: list[FarmPlan]
    devices: list[DevicePlan]
    products: list[ProductPlan]

    @property
    def plots(self) -> list[PlotPlan]:
        return [p for f in self.farms for p in f.plots]

    @property
    def tree_count(self) -> int:
        return sum(p.tree_count for p in self.plots)

    def plot(self, code: str) -> PlotPlan:
        return self._plots_by_code[code]

    def farm(self, code: str) -> FarmPlan:
        return self._farms_by_code[code]

    @cached_property
    def _plots_by_code(self) -> dict[str, PlotPlan]:
        return {p.code: p for p in self.plots}

    @cached_property
    def _farms_by_code(self) -> dict[str, FarmPlan]:
        return {f.code: f for f in self.farms}


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def make_plan(spec: WorldSpec) -> WorldPlan:
    """The cooperative `spec` describes, identical for identical specs."""
    rng = random.Random(f"{spec.seed}:world")
    districts = [d for d in COFFEE_DISTRICTS if not spec.districts or d.name in spec.districts]
    if not districts:
        raise ValueError(f"no known coffee district among {spec.districts}")
    farms: list[FarmPlan] = []
    devices: list[DevicePlan] = []
    plot_index = 0
    total_trees = 0
    target = spec.trees
    n_farms = spec.farms if target is None else 10**9
    f = 0
    while f < n_farms and (target is None or total_trees < target):
        f += 1
        district = (
            districts[(f - 1) % len(districts)] if f <= len(districts) else rng.choice(districts)
        )
        # an exact share of consenting farms, spread along the list
        consent = int(f * spec.consent_share) > int((f - 1) * spec.consent_share)
        owner = _person(rng)
        display = f"{rng.choice(DISPLAY_PREFIX)} {owner.split()[-1]}" if consent else None
        farm = FarmPlan(
            index=f,
            code=f"FM-{f:04d}",
            display_name=display,
            consent=consent,
            district=district,
            commune=rng.choice(COMMUNES),
            owner_name=owner,
            phone=f"+8490{rng.randrange(10**7):07d}",
            pickers=tuple(f"PK-{f:04d}{k}" for k in range(1, rng.randint(2, 4) + 1)),
        )
        farm_ha = max(0.3, rng.lognormvariate(0, 0.45) * spec.mean_farm_ha * 0.91)
        n_plots = 1 if farm_ha < 1.2 else rng.choice((1, 2, 2, 3))
        shares = [rng.uniform(0.6, 1.4) for _ in range(n_plots)]
        management = rng.uniform(0.8, 1.2)
        grid = rng.choice(PLANTING_GRIDS)
        for p in range(n_plots):
            plot_index += 1
            area = farm_ha * shares[p] / sum(shares)
            shape = random_plot_shape(rng, district, area)
            lo, hi = district.altitude_m
            count = shape.grid_count(grid)
            if target is not None:
                count = min(count, target - total_trees)
            plot = PlotPlan(
                code=f"{farm.code}-{chr(ord('A') + p)}",
                farm_code=farm.code,
                index=plot_index,
                district=district,
                shape=shape,
                area_ha=round(shape.area_ha(), 4),
                altitude_m=rng.randint(lo, hi),
                grid=grid,
                cultivar=rng.choices(CULTIVARS, CULTIVAR_WEIGHTS)[0],
                planted_year=rng.choice(range(1996, 2021)),
                management=management,
                growing_area_code=f"VN-66-{district.short}-{plot_index:05d}",
                tree_count=count,
                seed=spec.seed,
                sample_size=spec.harvest_trees_per_plot,
            )
            farm.plots.append(plot)
            total_trees += count
            devices.append(_device(rng, spec, "soil_node", "sn", farm, plot))
            if target is not None and total_trees >= target:
                break
        kind = "phone" if rng.random() < spec.phone_share else "harvest_scale"
        devices.append(
            _device(rng, spec, kind, "ph" if kind == "phone" else "hs", farm, farm.plots[0])
        )
        farms.append(farm)
    # one weather station per district in use, on that district's first plot
    seen: set[str] = set()
    for farm in farms:
        if farm.district.name not in seen:
            seen.add(farm.district.name)
            devices.append(_device(rng, spec, "weather_station", "ws", farm, farm.plots[0]))
    # GTINs are unique across the database: item references follow the cooperative code
    item = (zlib.crc32(spec.coop_code.encode()) % 9000 + 1000) * 10
    products = [
        ProductPlan(
            "Robusta Đắk Lắk green, screen 16", "green", gtin14(spec.gs1_company_prefix, item + 1)
        ),
        ProductPlan(
            "Robusta Đắk Lắk green, 60 kg bag", "packed", gtin14(spec.gs1_company_prefix, item + 2)
        ),
    ]
    return WorldPlan(spec=spec, farms=farms, devices=devices, products=products)


def _device(
    rng: random.Random, spec: WorldSpec, kind: str, tag: str, farm: FarmPlan, plot: PlotPlan
) -> DevicePlan:
    suffix = plot.code.rsplit("-", 1)[-1] if kind in ("soil_node", "weather_station") else ""
    return DevicePlan(
        # the whole id, as registry.qualified_device_id makes it
        id=f"{spec.coop_code}.{tag}-{farm.index:04d}{suffix}",
        kind=kind,
        farm_code=farm.code,
        plot_code=plot.code,
        district=plot.district.name,
        altitude_m=plot.altitude_m,
        ts_format=rng.choice(("iso", "iso", "epoch_ms")),
        firmware=rng.choice(("1.2.0", "1.2.0", "1.3.1", "2.0.4")),
    )
