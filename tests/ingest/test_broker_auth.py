"""`coffeetrace broker-config` files on a real Mosquitto: devices publish only under their
own topic level, wrong passwords are refused, the ingest user subscribes and consumes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from coffeetrace.embedded import EmbeddedBroker, free_port
from coffeetrace.ingest.brokerconfig import render_acl, write_broker_auth
from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from tests.factories import World
from tests.ingest.conftest import broker_data_dir
from tests.ingest.helpers import Publisher, connect_result, now_ms, scalar, wait_until

INGEST_PASSWORD = "ingest-secret-for-tests"


@pytest.fixture
def auth_broker(
    settings: Settings, world: World, conn: psycopg.Connection
) -> Iterator[tuple[EmbeddedBroker, Settings]]:
    for data_dir in broker_data_dir():
        s = settings.model_copy(update={"mqtt_ingest_password": INGEST_PASSWORD})
        auth = write_broker_auth(conn, s, data_dir / "auth")
        (data_dir / "auth").chmod(0o711)
        broker = EmbeddedBroker(
            data_dir, free_port(), password_file=auth.passwords, acl_file=auth.acl
        )
        broker.start()
        url = f"mqtt://{s.mqtt_ingest_username}:{INGEST_PASSWORD}@127.0.0.1:{broker.port}"
        try:
            yield broker, s.model_copy(update={"mqtt_url": url})
        finally:
            broker.stop()


def test_acl_file_names_the_prefix_and_ingest_user() -> None:
    acl = render_acl("coop/v1", "ingest-x")
    patterns = [line for line in acl.splitlines() if line.startswith("pattern")]
    assert patterns == [
        f"pattern write coop/v1/devices/%u/{leaf}" for leaf in ("telemetry", "harvest", "status")
    ]
    assert acl.index("user ingest-x") < acl.index("topic read coop/v1/devices/+/+")


def test_wrong_password_is_refused(
    auth_broker: tuple[EmbeddedBroker, Settings], world: World
) -> None:
    broker, _ = auth_broker
    soil = world.devices["soil"]
    assert not connect_result(broker.port, soil.username, soil.password, soil.username).is_failure
    refused = connect_result(broker.port, soil.username, soil.password + "x", soil.username)
    assert refused.is_failure
    assert connect_result(broker.port, "nobody-device", "whatever", "nobody-device").is_failure


def test_device_cannot_publish_under_another_device(
    auth_broker: tuple[EmbeddedBroker, Settings], world: World
) -> None:
    broker, s = auth_broker
    soil, scale = world.devices["soil"], world.devices["scale"]
    svc = IngestService(s)
    svc.start()  # subscribing proves the ingest user's read access
    try:
        pub = Publisher(
            f"mqtt://127.0.0.1:{broker.port}",
            soil.username,
            username=soil.username,
            password=soil.password,
        )
        assert pub.connected.wait(10)
        prefix = s.topic_prefix
        # soil node pretends to be the scale: the broker drops it (MQTT 3.1.1 still PUBACKs)
        pub.publish(
            f"{prefix}/devices/{scale.username}/telemetry",
            {"seq": 1, "ts": now_ms(), "values": {"temperature": 20.0}},
        )
        pub.publish(
            f"{prefix}/devices/{soil.username}/telemetry",
            {"seq": 2, "ts": now_ms(), "values": {"temperature": 21.0}},
        )
        assert pub.wait_all_acked(10)
        pub.close()
        db = s.database_url
        assert wait_until(lambda: scalar(db, "select count(*) from ingest_messages") >= 1)
        time.sleep(1)  # the forged message, had it passed, would have come first
    finally:
        svc.stop()
    with psycopg.connect(db) as c:
        rows = c.execute("select device_id, msg_id from ingest_messages").fetchall()
    assert rows == [(soil.username, "2")]
    assert svc.metrics.received._value.get() == 1
    assert scalar(db, "select count(*) from dead_letters") == 0


def test_broker_config_command_writes_both_files(
    tmp_path: Path, settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from coffeetrace.cli import app

    monkeypatch.setenv("COFFEETRACE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COFFEETRACE_MQTT_INGEST_PASSWORD", INGEST_PASSWORD)
    monkeypatch.setenv("COFFEETRACE_TOPIC_PREFIX", settings.topic_prefix)
    result = CliRunner().invoke(app, ["broker-config", "--out", str(tmp_path / "auth")])
    assert result.exit_code == 0, result.output
    users = [
        line.split(":", 1)[0] for line in (tmp_path / "auth" / "passwords").read_text().splitlines()
    ]
    assert sorted(users) == sorted(
        ["coffeetrace-ingest", world.devices["soil"].username, world.devices["scale"].username]
    )
    assert (
        f"pattern write {settings.topic_prefix}/devices/%u/telemetry"
        in (tmp_path / "auth" / "acl").read_text().splitlines()
    )
