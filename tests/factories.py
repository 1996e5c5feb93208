"""Small builders of registry objects for tests, through the project's own functions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from coffeetrace.credentials import new_device_secret
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing


def square(lon: float, lat: float, side_deg: float = 0.001) -> dict[str, Any]:
    """A closed GeoJSON square polygon with its south-west corner at (lon, lat)."""
    ring = [
        [lon, lat],
        [lon + side_deg, lat],
        [lon + side_deg, lat + side_deg],
        [lon, lat + side_deg],
        [lon, lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass
class World:
    coop: dict[str, Any]
    farm: dict[str, Any]
    plot: dict[str, Any]
    trees: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, registry.IssuedDevice] = field(default_factory=dict)


def make_world(
    conn: psycopg.Connection,
    *,
    keys: KeyRing,
    trees: int = 3,
    lon: float = 108.05,
    lat: float = 12.68,
    code: str | None = None,
) -> World:
    """A cooperative with one farm, one 1-ha plot, `trees` trees, a soil node and a scale;
    every registry row has its registry version, signed with `keys`."""
    code = code or f"coop-{uuid.uuid4().hex[:8]}"
    coop = registry.create_cooperative(
        conn, code, f"Cooperative {code}", gs1_company_prefix="8930000"
    )
    farm = registry.create_farm(
        conn,
        coop["id"],
        f"F-{uuid.uuid4().hex[:6].upper()}",
        keys=keys,
        display_name="Farm Ea Tu",
        display_name_consent=True,
        district="Buôn Ma Thuột",
        private={
            "owner_name": "Nguyễn Văn A",
            "phone": "+84912345678",
            "national_id": "079123456789",
            "data_consent": True,
        },
    )
    plot = registry.create_plot(
        conn,
        coop["id"],
        farm["id"],
        "P-1",
        square(lon, lat),
        1.0,
        keys=keys,
        altitude_m=500,
        growing_area_code="VN-DL-001",
        district="Buôn Ma Thuột",
    )
    world = World(coop=coop, farm=farm, plot=plot)
    world.trees = registry.create_trees(
        conn,
        coop["id"],
        plot["id"],
        [
            dict(
                tag_code=f"T-{i:05d}",
                lon=lon + 0.0001 * (i + 1),
                lat=lat + 0.0001 * (i + 1),
                cultivar="TR4",
                planted_on=date(2012, 6, 1),
            )
            for i in range(trees)
        ],
        keys=keys,
    )
    world.devices["soil"] = registry.register_device(
        conn, coop["id"], "soil_node", plot_id=plot["id"], secret=new_device_secret()
    )
    world.devices["scale"] = registry.register_device(
        conn, coop["id"], "harvest_scale", plot_id=plot["id"], secret=new_device_secret()
    )
    return world
