"""Shared fixtures: the real PostgreSQL and MQTT broker, an isolated database per test
(cloned from a migrated template) and a unique topic prefix per test.

Servers, in order of preference: COFFEETRACE_TEST_DATABASE_URL / COFFEETRACE_TEST_MQTT_URL;
the machine's PostgreSQL at 127.0.0.1:5432 and broker at 127.0.0.1:1883 when they answer;
otherwise the embedded PostgreSQL and broker, started here for the session.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from coffeetrace.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, port_answers
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests import sealing

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@dataclass
class PgServer:
    admin_url: str  # URL of a maintenance database on the server

    def url(self, database: str) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        info["dbname"] = database
        return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("COFFEETRACE_TEST_DATABASE_URL")
    if url:
        yield PgServer(url)
        return
    if port_answers("127.0.0.1", 5432):
        yield PgServer("postgresql://postgres@127.0.0.1:5432/postgres")
        return
    data = Path(tempfile.mkdtemp(prefix="coffeetrace-test-pg-"))
    pg = EmbeddedPostgres(data, free_port())
    pg.start()
    try:
        yield PgServer(pg.admin_url())
    finally:
        pg.stop("immediate")


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    name = f"ct_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), row_factory=dict_row) as conn:
            migrate(conn)
            # On TimescaleDB the scheduler may start each policy as soon as 0004 has
            # committed (over the template's empty tables); paused here, the policies are
            # paused in every clone from its start, and nothing runs under a test.
            if conn.execute("select 1 from pg_extension where extname = 'timescaledb'").fetchone():
                conn.execute(
                    "select alter_job(job_id, scheduled => false)"
                    " from timescaledb_information.jobs where hypertable_schema = 'public'"
                )
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            # On TimescaleDB a scheduler keeps a session in every database with the
            # extension, and a database in use cannot be cloned; none starts where
            # connections are not allowed.
            admin.execute(f'alter database "{name}" with allow_connections false')
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
        yield name
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def db_url(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """A fresh, migrated database of the test's own."""
    name = f"ct_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}" template "{template_db}"')
    try:
        yield pg_server.url(name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    p = ConnectionPool(db_url, min_size=1, max_size=4, kwargs={"row_factory": dict_row}, open=False)
    p.open(wait=True)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    url = os.environ.get("COFFEETRACE_TEST_MQTT_URL")
    if url:
        yield url
        return
    if port_answers("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    broker = EmbeddedBroker(Path(tempfile.mkdtemp(prefix="coffeetrace-test-mqtt-")), free_port())
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def shipped_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of the tests' own: Mosquitto with the shipped configuration when it is
    installed (the machine's broker keeps Mosquitto's default limits, which drop bursts),
    otherwise the in-process fallback broker."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("shipped-broker"), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}/coffeetrace/v1"


@pytest.fixture
def settings(db_url: str, mqtt_url: str, topic_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        mqtt_url=mqtt_url,
        topic_prefix=topic_prefix,
        data_dir=tmp_path / "data",
        mqtt_client_id=f"ct-test-{uuid.uuid4().hex[:10]}",
        ingest_metrics_port=0,
        public_base_url="http://testserver",
        # Most tests push bursts of thousands of messages through one device to test loss,
        # order and throughput, far above any real device's rate: the per-device limits
        # are off here, and tests/ingest/test_fairness.py sets them.
        ingest_device_msgs_per_s=0,
        ingest_device_sets_per_s=0,
    )


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    """The cooperatives' signing keys, in the same place the `settings` fixture's
    components look for them ({data_dir}/keys)."""
    return KeyRing(tmp_path / "data" / "keys")


@pytest.fixture(autouse=True)
def _sealing_keys(keys: KeyRing) -> Iterator[None]:
    """Harvests the builders insert with SQL are sealed with the test's own keys, as
    ingest would have sealed them (tests/sealing.py)."""
    sealing.use_keys(keys)
    try:
        yield
    finally:
        sealing.use_keys(None)


@pytest.fixture
def epcis_schema_path() -> Path:
    path = SHARED / "reference" / "epcis" / "EPCIS-JSON-Schema.json"
    if not path.exists():
        pytest.skip(f"GS1's EPCIS schema is not at {path} (shared/ is not beside the checkout)")
    return path
