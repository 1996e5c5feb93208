"""Migrating from empty gives the full schema; running again changes nothing."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.rows import dict_row

from coffeetrace.migrate import available_migrations, migrate, timescaledb_loadable
from coffeetrace.trace.keys import KeyRing

EXPECTED_TABLES = {
    "cooperatives",
    "products",
    "farms",
    "farm_private",
    "plots",
    "trees",
    "devices",
    "sensor_readings",
    "harvest_events",
    "ingest_text_keys",  # with ingest_seq_ranges, seen as the view ingest_messages (0056)
    "ingest_seq_ranges",
    "dead_letters",
    "lots",
    "lot_harvests",
    "transformations",
    "transformation_inputs",
    "transformation_outputs",
    "trace_events",
    "schema_migrations",
}


def _schema(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'public' order by 1, 2"
    ).fetchall()
    return [(r["table_name"], r["column_name"], r["data_type"]) for r in rows]


def test_migrate_from_empty_twice(pg_server) -> None:
    name = f"ct_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), row_factory=dict_row) as conn:
            first = migrate(conn)
            schema_after_first = _schema(conn)
            second = migrate(conn)
            tables = {
                r["table_name"]
                for r in conn.execute(
                    "select table_name from information_schema.tables where table_schema='public'"
                    " and table_type = 'BASE TABLE'"
                ).fetchall()
            }
            recorded = [
                r["version"]
                for r in conn.execute(
                    "select version from schema_migrations order by version"
                ).fetchall()
            ]
            tsdb = timescaledb_loadable(conn)
            assert _schema(conn) == schema_after_first
        expected = [m.version for m in available_migrations() if tsdb or not m.requires_timescaledb]
        assert first == expected
        assert second == []
        assert recorded == expected
        assert tables >= EXPECTED_TABLES
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def test_hourly_view_buckets_like_timescale(conn: psycopg.Connection, keys: KeyRing) -> None:
    from tests.factories import make_world

    world = make_world(conn, keys=keys, trees=1)
    conn.execute(
        "insert into sensor_readings (time, device_id, plot_id, metric, value) values"
        " ('2026-05-01 10:05+00', %(d)s, %(p)s, 'soilMoistureVwc', 0.30),"
        " ('2026-05-01 10:55+00', %(d)s, %(p)s, 'soilMoistureVwc', 0.40),"
        " ('2026-05-01 11:00+00', %(d)s, %(p)s, 'soilMoistureVwc', 0.50)",
        {"d": world.devices["soil"].username, "p": world.plot["id"]},
    )
    rows = conn.execute(
        "select bucket, n, round(avg::numeric, 3) as avg from plot_metrics_hourly"
        " where plot_id = %s order by bucket",
        (world.plot["id"],),
    ).fetchall()
    got = [(r["bucket"].hour, r["n"], float(r["avg"])) for r in rows]
    assert got == [(10, 2, 0.35), (11, 1, 0.5)]
