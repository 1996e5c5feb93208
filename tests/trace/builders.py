"""Harvest rows inserted the way ingest stores them (sealed in an ingest batch, as ingest
seals what it writes: tests/sealing.py), and small lot graphs for the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from coffeetrace.trace.keys import KeyRing
from tests import sealing

T0 = datetime(2026, 11, 10, 7, 30, tzinfo=UTC)


def insert_harvest(
    conn: psycopg.Connection,
    tree: dict[str, Any],
    kg: float | str,
    *,
    time: datetime | None = None,
    device_id: str = "scale-test",
    keys: KeyRing | None = None,
    seal: bool = True,
) -> uuid.UUID:
    """One harvest_events row for the tree (as ingest writes it), returning its id; sealed
    in a batch of its own with `keys` (default: the test's) unless `seal` is False."""
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
    harvest_id: uuid.UUID = row["id"]  # type: ignore[index]
    if seal:
        sealing.seal(conn, [harvest_id], keys)
    return harvest_id


def harvest_trees(
    conn: psycopg.Connection,
    trees: list[dict[str, Any]],
    kg: float | str = 4.0,
    *,
    start: datetime = T0,
    keys: KeyRing | None = None,
) -> list[uuid.UUID]:
    """One harvest per tree, a minute apart, sealed together in one batch."""
    ids = [
        insert_harvest(conn, t, kg, time=start + timedelta(minutes=i), seal=False)
        for i, t in enumerate(trees)
    ]
    sealing.seal(conn, ids, keys)
    return ids
