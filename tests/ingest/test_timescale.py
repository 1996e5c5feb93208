"""Late data into compressed TimescaleDB chunks: a replayed offline buffer lands in a chunk
that compression has already closed, and is stored once (the ledger, not ON CONFLICT
against the chunk, decides). Runs only with COFFEETRACE_TEST_TIMESCALE_URL (a maintenance
database on a server with TimescaleDB), as tests/foundation/test_timescale.py does."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.ingest.service import IngestService
from coffeetrace.ingest.topics import device_topic
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.ingest.helpers import publish_all, scalar, wait_until

pytestmark = pytest.mark.timescale
URL_ENV = "COFFEETRACE_TEST_TIMESCALE_URL"


@pytest.fixture
def tsdb_url() -> Iterator[str]:
    admin = os.environ.get(URL_ENV)
    if not admin:
        pytest.skip(f"{URL_ENV} is not set: no TimescaleDB server to test against")
    name = f"ct_ingest_tsdb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _sets(first: int, count: int, when: datetime) -> list[dict[str, object]]:
    return [
        {
            "seq": first + i,
            "ts": int((when + timedelta(minutes=10 * i)).timestamp() * 1000),
            "values": {"soilMoistureVwc": 30 + i % 10, "soilTemperature": 22.5},
        }
        for i in range(count)
    ]


def test_late_buffer_into_a_compressed_chunk(
    tsdb_url: str, ingest_settings: Settings, keys: KeyRing
) -> None:
    with psycopg.connect(tsdb_url, row_factory=dict_row) as conn:
        applied = migrate(conn)
        assert any(v.startswith("0004") for v in applied), applied
        world = make_world(conn, keys=keys)
        conn.execute("update devices set registered_at = now() - interval '120 days'")
        conn.commit()
    s = ingest_settings.model_copy(update={"database_url": tsdb_url})
    soil = world.devices["soil"].username
    topic = device_topic(s.topic_prefix, soil, "telemetry")
    old = datetime.now(UTC) - timedelta(days=60)
    svc = IngestService(s)
    svc.start()
    try:
        publish_all(s.mqtt_url, [(topic, _sets(0, 50, old))])
        assert wait_until(lambda: scalar(tsdb_url, "select count(*) from sensor_readings") == 100)
        with psycopg.connect(tsdb_url, autocommit=True) as conn:
            compressed = conn.execute(
                "select count(compress_chunk(c)) from show_chunks('sensor_readings') c"
            ).fetchone()
            assert compressed is not None and compressed[0] >= 1
        # the buffer again (a device that never got its PUBACKs) plus 50 new sets, same days
        publish_all(s.mqtt_url, [(topic, _sets(0, 100, old))])
        assert wait_until(lambda: scalar(tsdb_url, "select count(*) from ingest_messages") == 100)
        assert wait_until(lambda: scalar(tsdb_url, "select count(*) from sensor_readings") == 200)
    finally:
        svc.stop()
    assert scalar(tsdb_url, "select count(distinct (time, metric)) from sensor_readings") == 200
    assert scalar(tsdb_url, "select count(*) from dead_letters") == 0
    assert svc.metrics.duplicates._value.get() == 50
    with psycopg.connect(tsdb_url) as conn:
        n = conn.execute(
            "select count(*) from chunk_compression_stats('sensor_readings') "
            "where compression_status = 'Compressed'"
        ).fetchone()
    assert n is not None and n[0] >= 1  # the late rows went into a chunk that stays compressed
