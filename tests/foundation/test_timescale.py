"""TimescaleDB: the schema migrates onto it, and it answers exactly as plain PostgreSQL does.

Runs only when COFFEETRACE_TEST_TIMESCALE_URL names a maintenance database on a server with
TimescaleDB installed and in `shared_preload_libraries`; the plain side of each comparison is
the suite's usual server (the `db_url` fixture). Policies are run with `run_job` rather than
waiting for TimescaleDB's scheduler, which is kept out of a database while migration 0004
creates the policies and they are paused (`scheduler_kept_out`), so that no job runs between
the steps being compared. A test's database is cloned from a template migrated so.

Only TimescaleDB's public interface is used (the `timescaledb_information` views and its
documented functions), never its internal catalogs, whose columns change between releases.

Reading values are multiples of 1/8, so sums and averages are exact in float8 whatever order
either server adds them in, and the answers can be compared with `==`.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from coffeetrace.migrate import available_migrations, migrate, timescaledb_loadable
from coffeetrace.sql import load_queries

pytestmark = pytest.mark.timescale

URL_ENV = "COFFEETRACE_TEST_TIMESCALE_URL"

PLOTS = [uuid.uuid5(uuid.NAMESPACE_URL, f"coffeetrace-test/plot/{i}") for i in range(3)]
TREE = uuid.uuid5(uuid.NAMESPACE_URL, "coffeetrace-test/tree/0")
METRICS = ["soilMoistureVwc", "soilTemperature"]
START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 40
STEP = timedelta(minutes=20)
# Chunks wholly before this are compressed before the late rows arrive.
COMPRESS_BEFORE = datetime(2026, 6, 25, tzinfo=UTC)

Conn = psycopg.Connection[dict[str, Any]]
Reading = tuple[datetime, str, uuid.UUID, uuid.UUID | None, str, float]

SQL = load_queries("tests.foundation", "timescale.sql")

PAUSE_POLICIES = (
    "select alter_job(job_id, scheduled => false)"
    " from timescaledb_information.jobs where hypertable_schema = 'public'"
)


def _url(admin_url: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_url, dbname=database)


@pytest.fixture(scope="module")
def tsdb_admin_url() -> str:
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(
            f"{URL_ENV} is not set: no TimescaleDB server to test against (see docs/timescaledb.md)"
        )
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if not timescaledb_loadable(conn):
            pytest.fail(
                f"{URL_ENV} points at a server without TimescaleDB installed and in "
                "shared_preload_libraries"
            )
    return url


@pytest.fixture
def tsdb_empty_url(tsdb_admin_url: str) -> Iterator[str]:
    """A new, empty database on the TimescaleDB server."""
    name = f"ct_tsdb_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield _url(tsdb_admin_url, name)
    finally:
        with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def scheduler_kept_out(admin_url: str, conn: psycopg.Connection[Any]) -> Iterator[None]:
    """No TimescaleDB job runs in `conn`'s database while the block runs, whatever jobs it
    creates: migration 0004 commits its policies, and the scheduler would start each at once.

    A scheduler that starts in a database whose default is `timescaledb.restoring = on` (the
    setting TimescaleDB's own restore procedure uses) exits without running anything, and
    one already running is stopped here; `conn` keeps the value it connected with (off), so
    its own statements run as usual.
    """
    name = conn.info.dbname
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'alter database "{name}" set timescaledb.restoring = on')
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and pid <> %s and pid <> pg_backend_pid()",
            (name, conn.info.backend_pid),
        )
    try:
        yield
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'alter database "{name}" reset timescaledb.restoring')


@pytest.fixture(scope="module")
def tsdb_template(tsdb_admin_url: str) -> Iterator[str]:
    """A migrated TimescaleDB database whose policies were paused before any could run,
    that `tsdb` clones: a clone's are paused from the start, so in a test's database no job
    runs but those the test runs with `run_job`. A database with a session in it cannot be
    cloned, and TimescaleDB's scheduler keeps one in every database with the extension
    unless connections are off."""
    name = f"ct_tsdb_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with (
            psycopg.connect(_url(tsdb_admin_url, name), autocommit=True) as conn,
            scheduler_kept_out(tsdb_admin_url, conn),
        ):
            migrate(conn)
            conn.execute(PAUSE_POLICIES)
        with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
            admin.execute(f'alter database "{name}" with allow_connections false')
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
        yield name
    finally:
        with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def tsdb(tsdb_admin_url: str, tsdb_template: str) -> Iterator[Conn]:
    """Autocommit connection to a migrated TimescaleDB database whose policies have been
    paused since before it existed."""
    name = f"ct_tsdb_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}" template "{tsdb_template}"')
    try:
        with psycopg.connect(
            _url(tsdb_admin_url, name), autocommit=True, row_factory=dict_row
        ) as conn:
            yield conn
    finally:
        with psycopg.connect(tsdb_admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def plain(db_url: str) -> Iterator[Conn]:
    """Autocommit connection to a migrated database on the plain PostgreSQL server."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        if conn.execute("select 1 from pg_extension where extname = 'timescaledb'").fetchone():
            pytest.skip("the suite's PostgreSQL has TimescaleDB: nothing plain to compare with")
        yield conn


# -- data ------------------------------------------------------------------------------


def base_readings() -> list[Reading]:
    """Forty days of readings every 20 minutes, 3 plots x 2 metrics, in shuffled order."""
    rows: list[Reading] = []
    for i in range(DAYS * 24 * 3):
        t = START + i * STEP
        for p, plot in enumerate(PLOTS):
            for m, metric in enumerate(METRICS):
                tree = TREE if p == 0 and m == 0 else None  # some tree-bound readings
                rows.append(
                    (t, f"dev-{p}-{m}", plot, tree, metric, ((i * 37 + p * 11 + m * 5) % 200) / 8)
                )
    random.Random(20260601).shuffle(rows)
    return rows


def late_readings() -> list[Reading]:
    """Replayed offline buffers: old rows, many in compressed chunks, some at timestamps
    and bucket edges that already hold readings, in no particular order."""
    rng = random.Random(7)
    rows: list[Reading] = []
    for k in range(600):
        day = rng.choice([1, 2, 3, 9, 17, 24, 30, 36, 39])  # most before COMPRESS_BEFORE
        t = START + timedelta(days=day, minutes=rng.randrange(0, 24 * 60, 5))
        if k % 10 == 0:
            t = t.replace(minute=0)  # exactly on an hour edge
        p, m = rng.randrange(3), rng.randrange(2)
        rows.append((t, f"dev-{p}-{m}", PLOTS[p], None, METRICS[m], rng.randrange(-80, 400) / 8))
    return rows


def harvests(
    first: datetime, count: int, seed: int, span: timedelta = timedelta(days=40)
) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    hours = int(span / timedelta(hours=1))
    coop, farm = uuid.UUID(int=1), uuid.UUID(int=2)
    return [
        (
            first + timedelta(hours=rng.randrange(0, hours)),
            "scale-1",
            f"h-{seed}-{k}",
            coop,
            farm,
            PLOTS[k % 3],
            uuid.UUID(int=100 + k % 7),
            Decimal(rng.randrange(500, 9000)) / 1000,
            Decimal(rng.randrange(60, 100)),
            "PK-1",
        )
        for k in range(count)
    ]


COPY_READINGS = "copy sensor_readings (time, device_id, plot_id, tree_id, metric, value) from stdin"
COPY_HARVESTS = (
    "copy harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id,"
    " tree_id, cherry_kg, ripeness_pct, picker_code) from stdin"
)
INSERT_READING = (
    "insert into sensor_readings (time, device_id, plot_id, tree_id, metric, value)"
    " values (%s, %s, %s, %s, %s, %s)"
)


def copy_rows(conn: Conn, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.transaction(), conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def insert_rows(conn: Conn, rows: list[Reading]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(INSERT_READING, rows)


# -- TimescaleDB helpers --------------------------------------------------------------


def run_refresh_policies(conn: Conn) -> None:
    """Run the continuous-aggregate refresh policies as the scheduler would."""
    jobs = conn.execute(
        "select job_id from timescaledb_information.jobs"
        " where proc_name = 'policy_refresh_continuous_aggregate'"
        " and hypertable_schema = 'public' order by job_id"
    ).fetchall()
    assert len(jobs) == 2
    for job in jobs:
        conn.execute("call run_job(%s)", (job["job_id"],))


def compress_before(conn: Conn, table: str, before: datetime) -> list[str]:
    chunks = [
        c["chunk"]
        for c in conn.execute(SQL["chunks"], {"table": table}).fetchall()
        if c["range_end"] <= before
    ]
    for chunk in chunks:
        conn.execute("select compress_chunk(%s::regclass)", (chunk,))
    return chunks


def compressed_chunks(conn: Conn, table: str) -> set[str]:
    return {
        c["chunk"]
        for c in conn.execute(SQL["chunks"], {"table": table}).fetchall()
        if c["is_compressed"]
    }


def materialized_rows(conn: Conn, view: str) -> int:
    """Rows stored by the continuous aggregate (not those computed in real time)."""
    row = conn.execute(
        "select format('%%I.%%I', materialization_hypertable_schema,"
        " materialization_hypertable_name) as ht"
        " from timescaledb_information.continuous_aggregates"
        " where view_name = %s",
        (view,),
    ).fetchone()
    assert row is not None
    count = conn.execute(f"select count(*) as n from {row['ht']}").fetchone()
    assert count is not None
    return int(count["n"])


def assert_fully_materialized(conn: Conn, found: dict[str, Any]) -> None:
    assert materialized_rows(conn, "plot_metrics_hourly") == len(found["hourly"])
    assert materialized_rows(conn, "plot_metrics_daily") == len(found["daily"])


def rowstore_rows(conn: Conn, chunk: str) -> int:
    """Rows a compressed chunk holds uncompressed, in its own table beside the compressed
    data: rows inserted after it was compressed, until the compression policy compresses
    them too.

    No `timescaledb_information` view tells a "partially compressed" chunk apart, and a
    query on the chunk reads its compressed data too. `COPY chunk TO` does not: TimescaleDB
    leaves COPY TO of a chunk to PostgreSQL, which copies the chunk's own table only."""
    schema, table = chunk.split(".", 1)
    statement = sql.SQL("copy {} (time) to stdout").format(sql.Identifier(schema, table))
    with conn.cursor().copy(statement) as copy:
        return sum(bytes(block).count(b"\n") for block in copy)


def partial_chunks(conn: Conn) -> set[str]:
    """Compressed chunks of either hypertable that also hold uncompressed rows."""
    return {
        chunk
        for table in ("sensor_readings", "harvest_events")
        for chunk in compressed_chunks(conn, table)
        if rowstore_rows(conn, chunk)
    }


def answers(conn: Conn) -> dict[str, list[dict[str, Any]]]:
    window = {"since": START + timedelta(days=1, hours=3), "until": START + timedelta(days=33)}
    return {
        "hourly": conn.execute(SQL["hourly"]).fetchall(),
        "daily": conn.execute(SQL["daily"]).fetchall(),
        "date_bin": conn.execute(SQL["six_hourly_by_date_bin"], window).fetchall(),
        "harvest": conn.execute(SQL["harvest_daily_kg"]).fetchall(),
    }


def assert_same_answers(tsdb: Conn, plain: Conn) -> dict[str, Any]:
    ts, pg = answers(tsdb), answers(plain)
    for name in pg:
        assert pg[name], f"{name}: no rows on plain PostgreSQL, nothing was compared"
        assert len(ts[name]) == len(pg[name]), name
        for ts_row, pg_row in zip(ts[name], pg[name], strict=True):
            assert ts_row == pg_row, name
    return pg


# -- tests ----------------------------------------------------------------------------


def test_migrates_from_empty_twice_into_hypertables(tsdb_empty_url: str, plain: Conn) -> None:
    with psycopg.connect(tsdb_empty_url, autocommit=True, row_factory=dict_row) as conn:
        first = migrate(conn)
        second = migrate(conn)
        assert first == [m.version for m in available_migrations()]
        assert "0004" in first
        assert second == []

        assert conn.execute(SQL["hypertables"]).fetchall() == [
            {"hypertable_name": "harvest_events", "compression_enabled": True},
            {"hypertable_name": "sensor_readings", "compression_enabled": True},
        ]
        assert [
            (d["hypertable_name"], d["column_name"], d["time_interval"])
            for d in conn.execute(SQL["dimensions"]).fetchall()
        ] == [
            ("harvest_events", "time", timedelta(days=30)),
            ("sensor_readings", "time", timedelta(days=7)),
        ]
        settings = {
            (s["hypertable_name"], s["attname"]): (
                s["segmentby_column_index"],
                s["orderby_column_index"],
                s["orderby_asc"],
            )
            for s in conn.execute(SQL["compression_settings"]).fetchall()
        }
        assert settings == {
            ("harvest_events", "cooperative_id"): (1, None, None),
            ("harvest_events", "time"): (None, 1, False),
            ("sensor_readings", "plot_id"): (1, None, None),
            ("sensor_readings", "metric"): (2, None, None),
            ("sensor_readings", "time"): (None, 1, False),
        }

        policies = {
            (j["proc_name"], j["hypertable_name"]): j["config"]
            for j in conn.execute(SQL["jobs"]).fetchall()
        }
        assert policies[("policy_compression", "sensor_readings")]["compress_after"] == "30 days"
        assert policies[("policy_compression", "harvest_events")]["compress_after"] == "180 days"
        assert policies[("policy_retention", "sensor_readings")]["drop_after"] == "10 years"
        for view, end in (("plot_metrics_hourly", "01:00:00"), ("plot_metrics_daily", "1 day")):
            refresh = policies[("policy_refresh_continuous_aggregate", view)]
            # No lower bound: late data of any age is folded in by the next run.
            assert refresh["start_offset"] is None
            assert refresh["end_offset"] == end
        assert len(policies) == 5

        assert conn.execute(SQL["continuous_aggregates"]).fetchall() == [
            {"view_name": "plot_metrics_daily", "materialized_only": False},
            {"view_name": "plot_metrics_hourly", "materialized_only": False},
        ]
        # Same tables, views and columns as on plain PostgreSQL.
        assert (
            conn.execute(SQL["public_columns"]).fetchall()
            == plain.execute(SQL["public_columns"]).fetchall()
        )


def test_aggregates_equal_plain_postgres_through_late_and_compressed_data(
    tsdb: Conn, plain: Conn
) -> None:
    assert (
        tsdb.execute(SQL["view_columns"]).fetchall()
        == plain.execute(SQL["view_columns"]).fetchall()
    )
    # What the scheduler does right after migrating: refresh over empty tables.
    run_refresh_policies(tsdb)

    base = base_readings()
    crop = harvests(START, 300, seed=1)
    for conn in (tsdb, plain):
        copy_rows(conn, COPY_READINGS, base)
        copy_rows(conn, COPY_HARVESTS, crop)
    # Nothing materialized yet: real-time aggregation over raw rows.
    assert_same_answers(tsdb, plain)
    assert materialized_rows(tsdb, "plot_metrics_hourly") == 0

    compressed = compress_before(tsdb, "sensor_readings", COMPRESS_BEFORE)
    assert len(compressed) >= 3
    assert compress_before(tsdb, "harvest_events", COMPRESS_BEFORE)
    for view in ("plot_metrics_hourly", "plot_metrics_daily"):
        tsdb.execute(f"call refresh_continuous_aggregate('{view}', null, null)")
    # Everything materialized, raw data partly compressed.
    before_late = assert_same_answers(tsdb, plain)
    assert_fully_materialized(tsdb, before_late)

    late = late_readings()
    late_crop = harvests(START + timedelta(days=2), 40, seed=2)
    for conn in (tsdb, plain):
        insert_rows(conn, late[:300])
        copy_rows(conn, COPY_READINGS, late[300:])
        copy_rows(conn, COPY_HARVESTS, late_crop)
    assert compressed_chunks(tsdb, "sensor_readings") == set(compressed)

    run_refresh_policies(tsdb)
    after_late = assert_same_answers(tsdb, plain)
    assert_fully_materialized(tsdb, after_late)
    for name in ("hourly", "daily", "date_bin", "harvest"):
        assert after_late[name] != before_late[name], f"late rows changed no {name} answer"


def test_plain_database_gains_timescaledb(
    tsdb_admin_url: str, tsdb_empty_url: str, plain: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that ran on plain PostgreSQL keeps its data when TimescaleDB arrives."""
    base = base_readings()[:6000]
    crop = harvests(START, 100, seed=5)
    with psycopg.connect(tsdb_empty_url, autocommit=True, row_factory=dict_row) as conn:
        with monkeypatch.context() as m:
            m.setattr("coffeetrace.migrate.timescaledb_loadable", lambda _conn: False)
            assert "0004" not in migrate(conn)
        for c in (conn, plain):
            copy_rows(c, COPY_READINGS, base)
            copy_rows(c, COPY_HARVESTS, crop)
        with scheduler_kept_out(tsdb_admin_url, conn):
            assert migrate(conn) == ["0004"]
            conn.execute(PAUSE_POLICIES)
        assert [h["hypertable_name"] for h in conn.execute(SQL["hypertables"]).fetchall()] == [
            "harvest_events",
            "sensor_readings",
        ]
        assert_same_answers(conn, plain)
        assert materialized_rows(conn, "plot_metrics_hourly") == 0  # no policy has run
        run_refresh_policies(conn)
        assert_fully_materialized(conn, assert_same_answers(conn, plain))


def test_late_ingest_into_compressed_chunks(tsdb: Conn) -> None:
    week = [
        (START + i * STEP, "dev-0-0", PLOTS[0], None, METRICS[0], (i % 40) / 8)
        for i in range(7 * 72)
    ]
    copy_rows(tsdb, COPY_READINGS, week)
    copy_rows(tsdb, COPY_HARVESTS, harvests(START, 50, seed=3))
    compressed = compress_before(tsdb, "sensor_readings", START + timedelta(days=40))
    assert compressed and compressed_chunks(tsdb, "sensor_readings") == set(compressed)
    harvest_chunks = compress_before(tsdb, "harvest_events", START + timedelta(days=60))
    assert harvest_chunks

    # The ingest pattern: ledger claim and readings in one transaction, plain INSERT ...
    late_insert = [
        (START + timedelta(days=d, minutes=7), "dev-0-0", PLOTS[0], None, METRICS[0], 100.0 + d)
        for d in range(6)
    ]
    with tsdb.transaction():
        tsdb.execute(
            "insert into ingest_text_keys (device_id, msg_id, kind, readings)"
            " values ('dev-0-0', 'late-1', 'telemetry', 6) on conflict do nothing"
        )
        tsdb.cursor().executemany(INSERT_READING, late_insert)
    # ... and COPY, the way ingest writes batches.
    late_copy = [
        (START + timedelta(days=d, minutes=13), "dev-0-0", PLOTS[0], None, METRICS[0], 200.0 + d)
        for d in range(6)
    ]
    copy_rows(tsdb, COPY_READINGS, late_copy)
    late_crop = harvests(START, 5, seed=4, span=timedelta(days=2))
    copy_rows(tsdb, COPY_HARVESTS, late_crop)

    expected_n = len(week) + len(late_insert) + len(late_copy)
    expected_sum = sum(r[5] for r in week + late_insert + late_copy)
    total = "select count(*) as n, sum(value) as s from sensor_readings"
    assert tsdb.execute(total).fetchone() == {"n": expected_n, "s": expected_sum}
    assert tsdb.execute("select count(*) as n from harvest_events").fetchone() == {"n": 55}
    assert tsdb.execute(
        "select count(*) as n from sensor_readings where value >= 100"
    ).fetchone() == {"n": 12}

    # Late rows sit beside the compressed data (the chunk is "partially compressed") until
    # the compression policy compresses them too; nothing is lost on the way.
    partial = partial_chunks(tsdb)
    assert set(compressed) <= partial
    assert partial & set(harvest_chunks)
    # readings have no unique key, so nothing was decompressed to check one: the late rows
    # alone are beside the compressed data
    assert sum(rowstore_rows(tsdb, c) for c in compressed) == len(late_insert) + len(late_copy)
    job = tsdb.execute(
        "select job_id from timescaledb_information.jobs"
        " where proc_name = 'policy_compression'"
        " and hypertable_name = 'sensor_readings'"
    ).fetchone()
    assert job is not None
    tsdb.execute("call run_job(%s)", (job["job_id"],))
    assert partial_chunks(tsdb) & set(compressed) == set()
    # Harvest chunks are younger than their policy's 180 days: recompress them by hand.
    compress_before(tsdb, "harvest_events", START + timedelta(days=60))
    assert partial_chunks(tsdb) == set()
    assert compressed_chunks(tsdb, "sensor_readings") == set(compressed)
    assert tsdb.execute(total).fetchone() == {"n": expected_n, "s": expected_sum}
    assert tsdb.execute("select count(*) as n from harvest_events").fetchone() == {"n": 55}
