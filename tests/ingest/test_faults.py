"""Fault tests: crashes and restarts in the middle of a QoS 1 burst, each on servers these
tests start themselves. Each ends with stored rows == unique messages sent, no duplicates."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from coffeetrace.ingest.service import IngestService
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.factories import World, make_world
from tests.ingest.conftest import broker_data_dir
from tests.ingest.helpers import (
    Publisher,
    scalar,
    stored_summary,
    telemetry_burst,
    wait_until,
)
from tests.ingest.procs import IngestProcess

pytestmark = pytest.mark.slow


def _publish_in_background(
    url: str, items: list[tuple[str, str]], errors: list[BaseException]
) -> tuple[threading.Thread, Publisher]:
    pub = Publisher(url)
    assert pub.connected.wait(10)

    def run() -> None:
        try:
            for topic, payload in items:
                pub.publish(topic, payload)
            if not pub.wait_all_acked(120):
                errors.append(AssertionError("broker did not acknowledge the burst"))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, pub


def _finish(thread: threading.Thread, pub: Publisher, errors: list[BaseException]) -> None:
    thread.join(150)
    pub.close()
    assert not errors, errors


def _burst_until_stored(s: Settings, device: str, n: int) -> None:
    """Publish n one-reading messages (waiting for every PUBACK) and wait until stored."""
    errors: list[BaseException] = []
    thread, pub = _publish_in_background(
        s.mqtt_url, list(telemetry_burst(s.topic_prefix, device, range(n))), errors
    )
    _finish(thread, pub, errors)
    assert wait_until(lambda: stored_summary(s.database_url)[0] >= n, timeout=120)


def test_burst_of_20000_through_the_shipped_config_loses_nothing(
    ingest_settings: Settings, world: World
) -> None:
    s, n = ingest_settings, 20_000
    soil = world.devices["soil"].username
    svc = IngestService(s)
    svc.start()
    try:
        _burst_until_stored(s, soil, n)
    finally:
        svc.stop()
    assert stored_summary(s.database_url) == (n, n, n)
    assert svc.metrics.dead_letters.labels("invalid")._value.get() == 0


def test_consumer_killed_mid_burst_and_restarted(
    ingest_settings: Settings, world: World, tmp_path: Path
) -> None:
    s, n = ingest_settings, 20_000
    soil = world.devices["soil"].username
    proc = IngestProcess(s, tmp_path / "ingest.log")
    proc.start()
    errors: list[BaseException] = []
    thread, pub = _publish_in_background(
        s.mqtt_url, list(telemetry_burst(s.topic_prefix, soil, range(n))), errors
    )
    assert wait_until(lambda: stored_summary(s.database_url)[0] >= n // 10, timeout=60)
    proc.kill()
    stored_at_kill = stored_summary(s.database_url)[0]
    proc.start()
    try:
        _finish(thread, pub, errors)
        assert wait_until(lambda: stored_summary(s.database_url)[0] >= n, timeout=120)
    finally:
        assert proc.terminate() == 0  # SIGTERM: flush, ack, exit 0
    assert stored_at_kill < n, "the kill came after the burst; it tested nothing"
    assert stored_summary(s.database_url) == (n, n, n)


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    yield from broker_data_dir()


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    for data_dir in broker_data_dir():  # pg_ctl runs as another user too
        pg = EmbeddedPostgres(data_dir, free_port())
        pg.start()
        try:
            yield pg
        finally:
            pg.stop("immediate")


def test_postgres_restarted_mid_burst(
    ingest_settings: Settings, own_postgres: EmbeddedPostgres, keys: KeyRing
) -> None:
    with psycopg.connect(own_postgres.url, row_factory=dict_row) as conn:
        migrate(conn)
        world = make_world(conn, keys=keys)
        conn.commit()
    s = ingest_settings.model_copy(update={"database_url": own_postgres.url})
    n, soil = 10_000, world.devices["soil"].username
    svc = IngestService(s)
    svc.start()
    try:
        errors: list[BaseException] = []
        thread, pub = _publish_in_background(
            s.mqtt_url, list(telemetry_burst(s.topic_prefix, soil, range(n))), errors
        )
        assert wait_until(lambda: stored_summary(s.database_url)[0] >= n // 5, timeout=60)
        own_postgres.stop("fast")
        errors_before = svc.metrics.db_errors._value.get()
        assert wait_until(lambda: svc.metrics.db_errors._value.get() > errors_before, timeout=30)
        own_postgres.start()
        _finish(thread, pub, errors)
        assert wait_until(lambda: stored_summary(s.database_url)[0] >= n, timeout=120)
    finally:
        svc.stop()
    assert stored_summary(s.database_url) == (n, n, n)


def test_broker_restarted_mid_burst(settings: Settings, world: World, broker_dir: Path) -> None:
    broker = EmbeddedBroker(broker_dir, free_port())
    broker.start()
    s = settings.model_copy(update={"mqtt_url": broker.url})
    n, soil = 10_000, world.devices["soil"].username
    svc = IngestService(s)
    try:
        svc.start()
        errors: list[BaseException] = []
        thread, pub = _publish_in_background(
            s.mqtt_url, list(telemetry_burst(s.topic_prefix, soil, range(n))), errors
        )
        assert wait_until(lambda: stored_summary(s.database_url)[0] >= n // 5, timeout=60)
        broker.stop()  # SIGTERM: Mosquitto writes its persistence file
        stored_while_down = stored_summary(s.database_url)[0]
        broker.start()
        _finish(thread, pub, errors)
        assert wait_until(lambda: stored_summary(s.database_url)[0] >= n, timeout=120)
    finally:
        svc.stop()
        broker.stop()
    assert stored_while_down < n
    assert stored_summary(s.database_url) == (n, n, n)


def test_two_processes_share_the_subscription(
    ingest_settings: Settings, world: World, tmp_path: Path
) -> None:
    s, n = ingest_settings, 10_000
    soil = world.devices["soil"].username
    group = f"g{uuid.uuid4().hex[:6]}"
    # two calls in a row may hand out the same just-released port: ask until they differ
    ports = [free_port()]
    while len(ports) < 2:
        port = free_port()
        if port not in ports:
            ports.append(port)
    procs = [
        IngestProcess(
            s,
            tmp_path / f"ingest-{i}.log",
            COFFEETRACE_MQTT_SHARED_GROUP=group,
            COFFEETRACE_MQTT_CLIENT_ID=f"{s.mqtt_client_id}-{i}",
            COFFEETRACE_INGEST_METRICS_PORT=str(ports[i]),
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    try:
        _burst_until_stored(s, soil, n)
        received = [_metric(port, "coffeetrace_ingest_messages_received_total") for port in ports]
    finally:
        codes = [p.terminate() for p in procs]
    assert codes == [0, 0]
    assert stored_summary(s.database_url) == (n, n, n)
    assert all(r > 0 for r in received), received  # both took part
    assert sum(received) == n
    assert scalar(s.database_url, "select count(*) from dead_letters") == 0


def _metric(port: int, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported on :{port}")
