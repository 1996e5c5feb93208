"""Test data for the API: tenants with API keys of each role, harvests, lots and steps.

Harvest events and sensor readings are rows ingest would write; they are inserted
directly here because these tests are about what the API makes of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from coffeetrace.api.auth import create_api_key
from coffeetrace.trace import lots, processing, registry
from coffeetrace.trace.keys import KeyRing
from tests import sealing
from tests.factories import World, make_world

GTIN = "08930000000019"  # valid GS1 check digit


@dataclass
class Tenant:
    world: World
    keys: dict[str, str] = field(default_factory=dict)
    product: dict[str, Any] | None = None
    cherry: dict[str, Any] | None = None
    green: dict[str, Any] | None = None

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    @property
    def coop_id(self) -> Any:
        return self.world.coop["id"]


def add_harvests(
    conn: psycopg.Connection,
    world: World,
    *,
    start: datetime,
    kg: float = 4.0,
    keys: KeyRing | None = None,
) -> None:
    """A harvest per tree, sealed in one ingest batch as ingest would have sealed them
    (with `keys`, default the test's: tests/sealing.py)."""
    rows = conn.execute(
        "insert into harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id,"
        " tree_id, cherry_kg, ripeness_pct, picker_code)"
        " select %(t)s + (n * interval '1 minute'), %(dev)s, 'h-' || n, %(coop)s, %(farm)s,"
        " %(plot)s, tree_id, %(kg)s + n %% 3, 90, 'PK-0001'"
        " from unnest(%(trees)s::uuid[]) with ordinality as x(tree_id, n) returning id",
        {
            "t": start,
            "dev": world.devices["scale"].username,
            "coop": world.coop["id"],
            "farm": world.farm["id"],
            "plot": world.plot["id"],
            "kg": kg,
            "trees": [t["id"] for t in world.trees],
        },
    ).fetchall()
    sealing.seal(conn, [r["id"] for r in rows], keys)  # type: ignore[index]


def add_weather(
    conn: psycopg.Connection, world: World, *, until: datetime, days: int = 120
) -> None:
    """Daily-ish readings of rain, soil moisture and temperature for the plot."""
    conn.execute(
        "insert into sensor_readings (time, device_id, plot_id, metric, value)"
        " select %(until)s - (d * interval '1 day'), %(dev)s, %(plot)s, m.metric,"
        "  case m.metric when 'precipitation' then (d %% 7) * 2.5"
        "   when 'soilMoistureVwc' then 25 + (d %% 10) else 22 + (d %% 5) end"
        " from generate_series(1, %(days)s) d,"
        " (values ('precipitation'), ('soilMoistureVwc'), ('temperature')) m(metric)",
        {
            "until": until,
            "dev": world.devices["soil"].username,
            "plot": world.plot["id"],
            "days": days,
        },
    )


def make_tenant(
    conn: psycopg.Connection,
    *,
    keys: KeyRing,
    trees: int = 5,
    with_lots: bool = True,
    gtin: str | None = GTIN,
    lon: float = 108.05,
) -> Tenant:
    world = make_world(conn, keys=keys, trees=trees, lon=lon)
    tenant = Tenant(world=world)
    for role in ("admin", "operator", "read-only"):
        tenant.keys[role] = create_api_key(conn, world.coop["id"], role, f"test {role}").token
    tenant.product = registry.create_product(
        conn, world.coop["id"], "Robusta Ea Tu green", keys=keys, kind="green", gtin=gtin
    )
    if with_lots:
        harvest_start = datetime(2025, 11, 10, 7, 0, tzinfo=UTC)
        add_harvests(conn, world, start=harvest_start, keys=keys)
        add_weather(conn, world, until=harvest_start)
        cherry = lots.build_cherry_lot(
            conn,
            world.coop["id"],
            code=f"C-{uuid.uuid4().hex[:6]}",
            plot_ids=[world.plot["id"]],
            keys=keys,
        )
        dried = processing.record_transformation(
            conn,
            world.coop["id"],
            step="drying",
            occurred_at=harvest_start + timedelta(days=20),
            inputs=[(cherry["id"], cherry["quantity_kg"])],
            outputs=[
                {
                    "code": f"D-{uuid.uuid4().hex[:6]}",
                    "kg": float(cherry["quantity_kg"]) * 0.5,
                    "kind": "dried_cherry",
                }
            ],
            place="Drying yard Ea Tu",
            measurements={"moisture_pct": 12.5},
            keys=keys,
        )["outputs"][0]
        green = processing.record_transformation(
            conn,
            world.coop["id"],
            step="hulling",
            occurred_at=harvest_start + timedelta(days=30),
            inputs=[(dried["id"], dried["quantity_kg"])],
            outputs=[
                {
                    "code": f"G-{uuid.uuid4().hex[:6]}",
                    "kg": float(dried["quantity_kg"]) * 0.42,
                    "kind": "green",
                    "product_id": tenant.product["id"],
                }
            ],
            place="Hulling station",
            measurements={"screen_size": 18, "defect_count": 4},
            evidence=[
                {
                    "type": "certificate",
                    "name": "4C",
                    "issuer": "4C Services",
                    "url": "https://example.org/cert/4c.pdf",
                    "sha256": "ab" * 32,
                }
            ],
            keys=keys,
        )["outputs"][0]
        tenant.cherry, tenant.green = cherry, green
    conn.commit()
    return tenant
