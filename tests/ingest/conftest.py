"""Fixtures of the ingest tests: a Mosquitto of our own with the shipped configuration
(the machine's broker keeps Mosquitto's default limits), a registered world, a running
ingest service, and a publisher that waits for every PUBACK."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from coffeetrace.embedded import EmbeddedBroker
from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.factories import World, make_world


def broker_data_dir() -> Iterator[Path]:
    """A folder an embedded server can use when the tests run as root: PostgreSQL then runs
    as its own user, which cannot traverse pytest's 0700 temporary folders."""
    path = Path(tempfile.mkdtemp(prefix="coffeetrace-ingest-broker-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ingest_broker(shipped_broker: EmbeddedBroker) -> EmbeddedBroker:
    if shipped_broker.kind != "mosquitto":
        pytest.skip("mosquitto is not on PATH: the shipped broker configuration needs it")
    return shipped_broker


@pytest.fixture
def ingest_settings(settings: Settings, ingest_broker: EmbeddedBroker) -> Settings:
    return settings.model_copy(update={"mqtt_url": ingest_broker.url})


@pytest.fixture
def world(conn: psycopg.Connection, keys: KeyRing) -> World:
    w = make_world(conn, keys=keys, trees=3)
    conn.commit()
    return w


@pytest.fixture
def service(ingest_settings: Settings, world: World) -> Iterator[IngestService]:
    svc = IngestService(ingest_settings)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path
