"""Harvest rows inserted the way ingest stores them, and small lot graphs for the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

T0 = datetime(2026, 11, 10, 7, 30, tzinfo=UTC)


def insert_harvest(
    conn: psycopg.Connection,
    tree: dict[str, Any],
    kg: float | str,
    *,
    time: datetime | None = None,
    device_id: str = "scale-test",
) -> uuid.UUID:
    """One harvest_events row for the tree (as ingest writes it), returning its id."""
    row = conn.execute(
        "insert into harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id,"
        " tree_id, cherry_kg, ripeness_pct, picker_code)"
        " select %(time)s, %(device)s, %(msg)s, t.cooperative_id, p.farm_id, t.plot_id, t.id,"
        " %(kg)s, 90, 'PK-1' from trees t join plots p on p.id = t.plot_id where t.id = %(tree)s"
        " returning id",
        {
            "time": time or T0,
            "device": device_id,
            "msg": uuid.uuid4().hex,
            "kg": Decimal(str(kg)),
            "tree": tree["id"],
        },
    ).fetchone()
    assert row is not None
    return row["id"]  # type: ignore[index]


def harvest_trees(
    conn: psycopg.Connection,
    trees: list[dict[str, Any]],
    kg: float | str = 4.0,
    *,
    start: datetime = T0,
) -> list[uuid.UUID]:
    return [
        insert_harvest(conn, t, kg, time=start + timedelta(minutes=i)) for i, t in enumerate(trees)
    ]
