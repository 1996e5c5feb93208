"""The binary COPY rows ingest builds itself (ingest/copyrows.py) are byte for byte what
PostgreSQL's binary COPY gives for the same readings, and store the same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from coffeetrace.ingest.copyrows import SIGNATURE, TRAILER, reading_rows
from coffeetrace.ingest.store import READING_TYPES
from coffeetrace.trace.records import sorted_values, time_us

T = datetime(2026, 11, 10, 7, 30, 0, 123456, tzinfo=UTC)


def test_rows_are_postgresqls_own_binary_copy(conn: psycopg.Connection) -> None:
    plot, tree = uuid.uuid4(), uuid.uuid4()
    sets = [
        (T, "soil-0001", plot, None, {"temperature": 21.5, "relativeHumidity": 1 / 3}),
        (T - timedelta(days=9000), "ñode-ü", plot, tree, {"soilMoistureVwc": -0.0}),
        (T + timedelta(microseconds=1), "soil-0001", plot, tree, {"windSpeed": 1e-300}),
    ]
    conn.execute(
        "create temp table r (time timestamptz, device_id text, plot_id uuid, tree_id uuid,"
        " metric text, value float8)"
    )
    ours = []
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy r (time, device_id, plot_id, tree_id, metric, value) from stdin (format binary)"
        ) as copy,
    ):
        copy.set_types(READING_TYPES)
        for ts, device, p, t, values in sets:
            metrics, packed = sorted_values(values.items())
            ours.append(reading_rows(time_us(ts), device, p, t, metrics, packed))
            for metric in metrics:
                copy.write_row((ts, device, p, t, metric, values[metric]))
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy (select time, device_id, plot_id, tree_id, metric, value from r"
            " order by ctid) to stdout (format binary)"
        ) as copy,
    ):
        out = b"".join(bytes(chunk) for chunk in copy)
    assert out == b"".join([SIGNATURE, *ours, TRAILER])
    # and written by ingest's way, they read back the same
    conn.execute("create temp table r2 (like r)")
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy r2 (time, device_id, plot_id, tree_id, metric, value) from stdin (format binary)"
        ) as copy,
    ):
        copy.write(b"".join([SIGNATURE, *ours, TRAILER]))
    first = conn.execute("select * from r order by ctid").fetchall()
    assert first == conn.execute("select * from r2 order by ctid").fetchall()
