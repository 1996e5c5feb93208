"""The canonical leaves of ingested records (trace/records.py): one byte format, the same
bytes from the values ingest writes and from the values PostgreSQL gives back."""

from __future__ import annotations

import os
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from coffeetrace.trace import merkle, records
from coffeetrace.trace.batches import batch_root
from coffeetrace.trace.keys import KeyRing
from tests.factories import World, make_world

COOP = uuid.UUID("6f1c1c52-58a4-4c55-9d6e-0a9c2b7f0001")
FARM = uuid.UUID("6f1c1c52-58a4-4c55-9d6e-0a9c2b7f0002")
PLOT = uuid.UUID("6f1c1c52-58a4-4c55-9d6e-0a9c2b7f0003")
TREE = uuid.UUID("6f1c1c52-58a4-4c55-9d6e-0a9c2b7f0004")
T = datetime(2026, 11, 10, 7, 30, 0, 123456, tzinfo=UTC)


def _harvest(**changes: Any) -> dict[str, Any]:
    row = {
        "device_id": "scale-0001",
        "msg_id": "42",
        "time": T,
        "cooperative_id": COOP,
        "farm_id": FARM,
        "plot_id": PLOT,
        "tree_id": TREE,
        "cherry_kg": Decimal("4.200"),
        "ripeness_pct": Decimal("90.50"),
        "picker_code": "PK-1",
    }
    return {**row, **changes}


def test_the_harvest_format_is_pinned() -> None:
    """Version 1, byte for byte (a change here is a new format, with a new tag)."""
    us = int((T - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**6 + 123456
    assert records.harvest_data(**_harvest()) == b"\x1f".join(
        [
            b"ct.harvest.v1",
            b"scale-0001",
            b"42",
            str(us).encode(),
            str(COOP).encode(),
            str(FARM).encode(),
            str(PLOT).encode(),
            str(TREE).encode(),
            b"4.200",
            b"90.50",
            b"PK-1",
        ]
    )
    assert records.harvest_leaf(_harvest()) == merkle.leaf_hash(records.harvest_data(**_harvest()))


def test_the_reading_set_format_is_pinned() -> None:
    data = records.reading_set_data(
        "soil-1", "7", T, PLOT, None, {"temperature": 21.5, "relativeHumidity": 80.0}.items()
    )
    us = str(records.time_us(T)).encode()
    assert data == b"\x1f".join(
        [
            b"ct.reading_set.v1",
            b"soil-1",
            b"7",
            us,
            str(PLOT).encode(),
            b"\x00",
            b"2",
            b"relativeHumidity",
            b"temperature",
            struct.pack(">2d", 80.0, 21.5),
        ]
    )


@pytest.mark.parametrize(
    "a, b",
    [
        (Decimal("4.2"), Decimal("4.200")),
        (4.2, Decimal("4.200")),
        ("4.2", Decimal("4.200")),
        (4, Decimal("4.000")),
        (-0.0, Decimal("0.000")),
        (2.0005, Decimal("2.001")),  # half away from zero on the decimal text, as PostgreSQL
        (0.0005, Decimal("0.001")),
        (1e-05, Decimal("0.000")),
        (999.9995, Decimal("1000.000")),
    ],
)
def test_kilograms_at_the_columns_scale(a: Any, b: Decimal) -> None:
    assert records.harvest_leaf(_harvest(cherry_kg=a)) == records.harvest_leaf(
        _harvest(cherry_kg=b)
    )


def test_times_uuids_and_nulls_are_normalised() -> None:
    plus7 = T.astimezone(timezone(timedelta(hours=7)))
    assert records.harvest_leaf(_harvest(time=plus7)) == records.harvest_leaf(_harvest())
    as_text = _harvest(cooperative_id=str(COOP).upper(), tree_id=str(TREE))
    assert records.harvest_leaf(as_text) == records.harvest_leaf(_harvest())
    assert records.harvest_leaf(_harvest(ripeness_pct=90.5)) == records.harvest_leaf(_harvest())
    # null and empty differ, and so does any field
    assert records.harvest_leaf(_harvest(picker_code=None)) != records.harvest_leaf(
        _harvest(picker_code="")
    )
    for change in (
        {"cherry_kg": Decimal("8.4")},
        {"ripeness_pct": None},
        {"tree_id": uuid.uuid4()},
        {"time": T + timedelta(microseconds=1)},
        {"msg_id": "43"},
    ):
        assert records.harvest_leaf(_harvest(**change)) != records.harvest_leaf(_harvest())
    with pytest.raises(ValueError):
        records.harvest_leaf(_harvest(time=T.replace(tzinfo=None)))


def test_separators_inside_a_field_cannot_shift_fields() -> None:
    one = records.harvest_data(**_harvest(device_id="a\x1fb", msg_id="c"))
    two = records.harvest_data(**_harvest(device_id="a", msg_id="b\x1fc"))
    assert one != two
    assert records.harvest_data(**_harvest(picker_code="\x00")) != records.harvest_data(
        **_harvest(picker_code=None)
    )


def test_reading_set_values_in_any_order() -> None:
    a = records.reading_set_leaf("soil-1", "7", T, PLOT, TREE, [("b", 2.0), ("a", 1.0)])
    b = records.reading_set_leaf("soil-1", "7", T, str(PLOT), str(TREE), {"a": 1.0, "b": 2}.items())
    assert a == b
    assert a != records.reading_set_leaf("soil-1", "7", T, PLOT, TREE, [("a", 1.0), ("b", 2.5)])
    assert a != records.reading_set_leaf("soil-1", "7", T, PLOT, None, [("a", 1.0), ("b", 2.0)])
    assert a != records.reading_set_leaf("soil-1", "7", T, PLOT, TREE, [("a", 1.0)])


@pytest.mark.parametrize(
    ("device", "key", "tree", "values"),
    [
        ("soil-1", "7", TREE, {"temperature": 21.5, "relativeHumidity": 1 / 3}),
        ("soil-1", "h-01", None, {"soilMoistureVwc": -0.0}),
        ("ñode-ü\x1f", "2", TREE, {"windSpeed": 1e-300, "leafWetness": 0.0, "a\x1b": 1.0}),
    ],
)
def test_a_shapes_leaf_is_the_reading_set_leaf(
    device: str, key: str, tree: uuid.UUID | None, values: dict[str, float]
) -> None:
    """ReadingSetLeaves (ingest's cached shape) gives reading_set_leaf's bytes, escapes too."""
    metrics, packed = records.sorted_values(values)
    leaves = records.ReadingSetLeaves(device, PLOT, tree, metrics)
    t_us = records.time_us(T)
    assert leaves.leaf(key, t_us, packed) == records.reading_set_leaf(
        device, key, T, PLOT, tree, values.items()
    )
    assert leaves.leaf(key, t_us + 1, packed) != leaves.leaf(key, t_us, packed)


def test_batch_root_is_the_rfc_root() -> None:
    for n in range(0, 70):
        leaves = [os.urandom(32) for _ in range(n)]
        assert batch_root(leaves) == merkle.root(leaves)


def _world(conn: psycopg.Connection, keys: KeyRing) -> World:
    world = make_world(conn, keys=keys, trees=1)
    conn.commit()
    return world


def test_the_same_leaf_from_ingests_values_and_the_stored_row(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    """What ingest puts into its COPYs (floats from the payload, scaled text, UTC times)
    and what PostgreSQL returns (Decimals, times in the session's zone) make one leaf."""
    world = _world(conn, keys)
    tree = world.trees[0]
    conn.execute("set time zone 'Asia/Ho_Chi_Minh'")
    kgs = [4.2, 2.0005, 0.0005, -0.0, 1e-05, 999.9995, 3.14159]
    ripeness = [90.5, None, 85.125, 0.005, 100.0, None, 12.345]
    expected = {}
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id,"
            " tree_id, cherry_kg, ripeness_pct, picker_code) from stdin"
        ) as copy,
    ):
        for i, (kg, rip) in enumerate(zip(kgs, ripeness, strict=True)):
            ts = T + timedelta(milliseconds=i)
            kg_text, rip_text = records.scaled(kg, 3), records.scaled(rip, 2)
            values = (
                ts,
                "scale-x",
                f"m{i}",
                world.coop["id"],
                world.farm["id"],
                world.plot["id"],
                tree["id"],
                kg_text,
                rip_text,
                None if i % 2 else "PK-9",
            )
            copy.write_row(values)
            expected[f"m{i}"] = records.harvest_leaf_of(*values[1:3], ts, *values[3:])
            # and from the raw float, as a caller with payload values would pass it
            assert expected[f"m{i}"] == records.harvest_leaf_of(
                "scale-x",
                f"m{i}",
                records.time_us(ts),
                world.coop["id"],
                str(world.farm["id"]),
                world.plot["id"],
                tree["id"],
                kg,
                rip,
                None if i % 2 else "PK-9",
            )
    rows = conn.execute("select * from harvest_events where device_id = 'scale-x'").fetchall()
    assert len(rows) == len(kgs)
    for row in rows:
        assert records.harvest_leaf(row) == expected[row["msg_id"]], row  # type: ignore[index]


def test_the_same_reading_set_leaf_through_float8(conn: psycopg.Connection, keys: KeyRing) -> None:
    """Binary COPY (as ingest writes) and a text insert both give back the exact doubles."""
    world = _world(conn, keys)
    values = {"temperature": 21.1, "relativeHumidity": 1 / 3, "soilMoistureVwc": 33.000000001}
    leaf = records.reading_set_leaf("soil-x", "9", T, world.plot["id"], None, values.items())
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy sensor_readings (time, device_id, plot_id, tree_id, metric, value)"
            " from stdin (format binary)"
        ) as copy,
    ):
        copy.set_types(["timestamptz", "text", "uuid", "uuid", "text", "float8"])
        for metric, value in values.items():
            copy.write_row((T, "soil-x", world.plot["id"], None, metric, value))
    conn.execute(
        "insert into sensor_readings (time, device_id, plot_id, metric, value)"
        " select %s, 'soil-y', %s, m, v from unnest(%s::text[], %s::text[]::float8[]) u(m, v)",
        (T, world.plot["id"], list(values), [repr(v) for v in values.values()]),
    )
    for device in ("soil-x", "soil-y"):
        rows = conn.execute(
            "select * from sensor_readings where device_id = %s", (device,)
        ).fetchall()
        got = records.reading_set_leaf(
            "soil-x",
            "9",
            rows[0]["time"],  # type: ignore[index]
            rows[0]["plot_id"],  # type: ignore[index]
            rows[0]["tree_id"],  # type: ignore[index]
            [(r["metric"], r["value"]) for r in rows],  # type: ignore[index]
        )
        assert got == leaf, device
