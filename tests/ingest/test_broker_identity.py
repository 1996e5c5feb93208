"""The broker enforces identity, from outside: a real Mosquitto with the shipped
configuration and its dynamic security plugin (the file `coffeetrace broker-config`
writes), devices connecting with their own valid credentials, and the API changing
credentials on the running broker.

- a device cannot take over the ingest's client id (nor another device's): refused, and
  the ingest's persistent session, with the messages queued for it, is kept;
- a retained publish is refused and nothing is retained; a device publishes to its own
  three topics only and may not subscribe;
- a password rotated, a device disabled or created through the API takes effect on the
  broker within seconds; when the broker does not confirm, the API answers 503 and
  nothing is changed;
- names the platform uses are refused at registration (422) and left out of
  `coffeetrace broker-config` with a warning.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace import db
from coffeetrace.api.app import create_app
from coffeetrace.api.broker_reconciler import reconcile_round
from coffeetrace.broker_control import BrokerControl
from coffeetrace.credentials import new_device_secret
from coffeetrace.embedded import EmbeddedBroker, find_dynsec_plugin, free_port
from coffeetrace.ingest.brokerconfig import write_dynsec_config
from coffeetrace.ingest.service import IngestService
from coffeetrace.mqtt import new_client, parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant
from tests.ingest.conftest import broker_data_dir
from tests.ingest.helpers import Publisher, connect_result, now_ms, scalar, wait_until

INGEST_PASSWORD = "ingest-secret-for-tests"
CONTROL_PASSWORD = "control-secret-for-tests"


@dataclass
class DynsecBroker:
    broker: EmbeddedBroker
    settings: Settings  # dynsec mode, mqtt_url with the ingest user
    tenant: Tenant

    @property
    def device_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.broker.port}"

    def device(self, name: str) -> registry.IssuedDevice:
        return self.tenant.world.devices[name]

    def topic(self, device_id: str, leaf: str = "telemetry") -> str:
        return f"{self.settings.topic_prefix}/devices/{device_id}/{leaf}"


@pytest.fixture
def tenant(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    t = make_tenant(conn, keys=keys, trees=3, with_lots=False)
    conn.commit()
    return t


@pytest.fixture
def dynsec(
    settings: Settings, tenant: Tenant, conn: psycopg.Connection, ingest_broker: EmbeddedBroker
) -> Iterator[DynsecBroker]:
    """Mosquitto with the shipped config and the dynsec file broker-config writes."""
    if find_dynsec_plugin() is None:
        pytest.skip("Mosquitto's dynamic security plugin is not installed")
    for data_dir in broker_data_dir():
        s = settings.model_copy(
            update={
                "mqtt_ingest_password": INGEST_PASSWORD,
                "mqtt_broker_auth": "dynsec",
                "mqtt_control_password": CONTROL_PASSWORD,
            }
        )
        auth = write_dynsec_config(conn, s, data_dir / "auth")
        broker = EmbeddedBroker(data_dir, free_port(), dynsec_file=auth.path)
        broker.start()
        url = f"mqtt://{s.mqtt_ingest_username}:{INGEST_PASSWORD}@127.0.0.1:{broker.port}"
        try:
            yield DynsecBroker(broker, s.model_copy(update={"mqtt_url": url}), tenant)
        finally:
            broker.stop()


def accepted(port: int, user: str, password: str, client_id: str | None = None) -> bool:
    return not connect_result(port, user, password, client_id or user).is_failure  # type: ignore[attr-defined]


def ledger(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as c:
        return [
            tuple(r)
            for r in c.execute(  # type: ignore[misc]
                "select device_id, msg_id from ingest_messages order by device_id, msg_id::int"
            )
        ]


def reading(seq: int) -> dict:
    return {"seq": seq, "ts": now_ms(), "values": {"soilMoistureVwc": 30.0 + seq / 100}}


# ----------------------------------------------------------------- client-id takeover


def test_takeover_of_the_ingest_client_id_is_refused_and_its_queue_kept(
    dynsec: DynsecBroker,
) -> None:
    s, port = dynsec.settings, dynsec.broker.port
    soil, scale = dynsec.device("soil"), dynsec.device("scale")
    db = s.database_url
    svc = IngestService(s)
    svc.start()
    pub = Publisher(
        dynsec.device_url, soil.username, username=soil.username, password=soil.password
    )
    try:
        assert pub.connected.wait(10)
        pub.publish(dynsec.topic(soil.username), reading(1))
        assert pub.wait_all_acked(10)
        assert wait_until(lambda: len(ledger(db)) == 1, 15)
    finally:
        svc.stop()
    # ingest is away; its persistent session collects what devices send meanwhile
    for seq in range(2, 12):
        pub.publish(dynsec.topic(soil.username), reading(seq))
    assert pub.wait_all_acked(10)

    # valid device credentials, the ingest's client id, a clean session: refused (had it
    # been let in, the broker would have discarded the ingest's session and its queue)
    refused = connect_result(port, soil.username, soil.password, s.mqtt_client_id)
    assert refused.is_failure  # type: ignore[attr-defined]
    # ... and the same against another device
    assert connect_result(port, soil.username, soil.password, scale.username).is_failure  # type: ignore[attr-defined]

    svc = IngestService(s)  # same client id: the session and its queue are still there
    svc.start()
    try:
        assert wait_until(lambda: len(ledger(db)) == 11, 20), ledger(db)
        # an attempt while ingest is connected does not disconnect it either
        assert connect_result(port, soil.username, soil.password, s.mqtt_client_id).is_failure  # type: ignore[attr-defined]
        pub.publish(dynsec.topic(soil.username), reading(12))
        assert pub.wait_all_acked(10)
        assert wait_until(lambda: len(ledger(db)) == 12, 15), ledger(db)
    finally:
        svc.stop()
        pub.close()
    assert ledger(db) == [(soil.username, str(n)) for n in range(1, 13)]
    assert scalar(db, "select count(*) from dead_letters") == 0


# ----------------------------------------------------------------- topics and retain


def test_retained_publish_is_refused_and_nothing_is_retained(dynsec: DynsecBroker) -> None:
    s = dynsec.settings
    soil = dynsec.device("soil")
    svc = IngestService(s)
    svc.start()
    try:
        pub = Publisher(
            dynsec.device_url, soil.username, username=soil.username, password=soil.password
        )
        assert pub.connected.wait(10)
        dropped = threading.Event()
        pub.client.on_disconnect = lambda *a: dropped.set()
        pub.client.publish(dynsec.topic(soil.username), json.dumps(reading(1)), qos=1, retain=True)
        assert dropped.wait(10), "the broker kept a client that sent a retained message"
        pub.close()

        # a new subscriber (the ingest user, another client id) gets no retained message
        got: list[paho.MQTTMessage] = []
        addr = parse_broker_url(s.mqtt_url)
        probe = new_client(addr, f"probe-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        probe.on_message = lambda c, u, m: got.append(m)
        probe.on_connect = lambda c, u, f, r, p=None: c.subscribe(
            f"{s.topic_prefix}/devices/+/+", 1
        )
        probe.on_subscribe = lambda *a: subscribed.set()
        probe.connect(addr.host, addr.port)
        probe.loop_start()
        try:
            assert subscribed.wait(10)
            # the device can still send what it should, the normal way
            ok = Publisher(
                dynsec.device_url, soil.username, username=soil.username, password=soil.password
            )
            assert ok.connected.wait(10)
            ok.publish(dynsec.topic(soil.username), reading(2))
            assert ok.wait_all_acked(10)
            ok.close()
            assert wait_until(lambda: len(got) >= 1, 10)
            time.sleep(0.5)
        finally:
            probe.disconnect()
            probe.loop_stop()
        assert [json.loads(m.payload)["seq"] for m in got] == [2]
        assert not any(m.retain for m in got)
        assert wait_until(lambda: ledger(s.database_url) == [(soil.username, "2")], 15)
    finally:
        svc.stop()


def test_device_publishes_to_its_three_topics_only_and_cannot_subscribe(
    dynsec: DynsecBroker,
) -> None:
    s = dynsec.settings
    soil = dynsec.device("soil")
    svc = IngestService(s)
    svc.start()
    try:
        pub = Publisher(
            dynsec.device_url, soil.username, username=soil.username, password=soil.password
        )
        assert pub.connected.wait(10)
        for n in range(3):  # the retained-junk attack, without retain: dropped by the broker
            pub.publish(f"{s.topic_prefix}/devices/{soil.username}/junk/{n}", b"x" * 1000)
        pub.publish(dynsec.topic(dynsec.device("scale").username), reading(1))
        pub.publish(dynsec.topic(soil.username, "status"), {"online": True, "battery_pct": 80})
        pub.publish(dynsec.topic(soil.username), reading(2))
        assert pub.wait_all_acked(10)
        suback: list[object] = []
        done = threading.Event()

        def on_subscribe(
            client: paho.Client, userdata: object, mid: int, reasons: list, props: object = None
        ) -> None:
            suback.extend(reasons)
            done.set()

        pub.client.on_subscribe = on_subscribe
        pub.client.subscribe(f"{s.topic_prefix}/devices/+/+", 1)
        assert done.wait(10)
        assert all(r.is_failure for r in suback)  # type: ignore[attr-defined]
        pub.close()
        db = s.database_url
        assert wait_until(lambda: ledger(db) == [(soil.username, "2")], 15), ledger(db)
        assert wait_until(
            lambda: (
                scalar(
                    db,
                    "select battery_pct from device_status where device_id = %s",
                    (soil.username,),
                )
                == 80
            )
        )
        time.sleep(0.5)
        assert ledger(db) == [(soil.username, "2")]
        assert scalar(db, "select count(*) from dead_letters") == 0
    finally:
        svc.stop()


def test_last_will_on_the_status_topic_still_arrives(dynsec: DynsecBroker) -> None:
    s = dynsec.settings
    soil = dynsec.device("soil")
    svc = IngestService(s)
    svc.start()
    try:
        client = new_client(parse_broker_url(dynsec.device_url), soil.username)
        client.username_pw_set(soil.username, soil.password)
        # as simulators/publisher.py sets it
        client.will_set(dynsec.topic(soil.username, "status"), b'{"online":false}', qos=1)
        connected = threading.Event()
        client.on_connect = lambda *a: connected.set()
        client.connect("127.0.0.1", dynsec.broker.port, keepalive=10)
        client.loop_start()
        assert connected.wait(10)
        client.publish(
            dynsec.topic(soil.username, "status"), json.dumps({"online": True}), qos=1
        ).wait_for_publish(10)
        db = s.database_url
        online = "select online from device_status where device_id = %s"
        assert wait_until(lambda: scalar(db, online, (soil.username,)) is True, 15)
        client.loop_stop()
        client.socket().shutdown(socket.SHUT_RDWR)  # the device drops off the network
        client.socket().close()
        assert wait_until(lambda: scalar(db, online, (soil.username,)) is False, 15)
    finally:
        svc.stop()


# ----------------------------------------------------------------- the API on a live broker


@pytest.fixture
def api(dynsec: DynsecBroker) -> Iterator[TestClient]:
    with TestClient(create_app(dynsec.settings)) as c:
        yield c


def test_rotated_password_is_refused_within_seconds_and_the_new_one_accepted(
    dynsec: DynsecBroker, api: TestClient
) -> None:
    port, soil = dynsec.broker.port, dynsec.device("soil")
    assert accepted(port, soil.username, soil.password)
    r = api.post(f"/v1/devices/{soil.username}/credential", headers=dynsec.tenant.auth("operator"))
    assert r.status_code == 200, r.text
    new = r.json()["mqtt_password"]
    assert wait_until(lambda: not accepted(port, soil.username, soil.password), 10, 0.2)
    assert accepted(port, soil.username, new)
    assert not accepted(port, soil.username, new, dynsec.settings.mqtt_client_id)


def test_disabled_device_is_refused_and_enabled_again(
    dynsec: DynsecBroker, api: TestClient
) -> None:
    port, scale = dynsec.broker.port, dynsec.device("scale")
    op = dynsec.tenant.auth("operator")
    assert accepted(port, scale.username, scale.password)
    r = api.post(f"/v1/devices/{scale.username}/disable", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert wait_until(lambda: not accepted(port, scale.username, scale.password), 10, 0.2)
    assert api.get(f"/v1/devices/{scale.username}", headers=op).json()["active"] is False
    assert (
        api.post(
            f"/v1/devices/{scale.username}/disable", headers=dynsec.tenant.auth("read-only")
        ).status_code
        == 403
    )
    r = api.post(f"/v1/devices/{scale.username}/enable", headers=op)
    assert r.status_code == 200 and r.json()["active"] is True
    assert wait_until(lambda: accepted(port, scale.username, scale.password), 10, 0.2)


def test_device_registered_through_the_api_connects_at_once(
    dynsec: DynsecBroker, api: TestClient
) -> None:
    port = dynsec.broker.port
    r = api.post(
        "/v1/devices",
        headers=dynsec.tenant.auth("operator"),
        json={"kind": "soil_node", "plot_id": str(dynsec.tenant.world.plot["id"])},
    )
    assert r.status_code == 201, r.text
    user, password = r.json()["mqtt_username"], r.json()["mqtt_password"]
    assert wait_until(lambda: accepted(port, user, password), 10, 0.2)
    assert not accepted(port, user, password, dynsec.settings.mqtt_client_id)


@pytest.mark.parametrize(
    "name",
    [
        "coffeetrace-ingest",
        "COFFEETRACE-INGEST",
        "client_id",
        "coffeetrace-control",
        "coffeetrace-ingest-2",
    ],
)
def test_registration_under_a_platform_name_is_refused(
    dynsec: DynsecBroker, api: TestClient, name: str
) -> None:
    s = dynsec.settings
    device_id = s.mqtt_client_id if name == "client_id" else name
    r = api.post(
        "/v1/devices",
        headers=dynsec.tenant.auth("operator"),
        json={"kind": "phone", "device_id": device_id},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid"
    assert "reserved" in body["message"]
    assert body["details"]["field"] == "device_id"
    assert scalar(s.database_url, "select count(*) from devices where id = %s", (device_id,)) == 0


def test_broker_that_does_not_confirm_gets_503_and_nothing_changes(dynsec: DynsecBroker) -> None:
    s = dynsec.settings
    dead = s.model_copy(
        update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}", "mqtt_control_timeout_s": 2.0}
    )
    soil = dynsec.device("soil")
    db = s.database_url
    before = scalar(db, "select credential_hash from devices where id = %s", (soil.username,))
    count = scalar(db, "select count(*) from devices")
    op = dynsec.tenant.auth("operator")
    with TestClient(create_app(dead)) as api:
        r = api.post("/v1/devices", headers=op, json={"kind": "phone"})
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "unavailable" and "broker" in r.json()["message"]
        assert api.post(f"/v1/devices/{soil.username}/credential", headers=op).status_code == 503
        assert api.post(f"/v1/devices/{soil.username}/disable", headers=op).status_code == 503
    assert scalar(db, "select count(*) from devices") == count
    assert (
        scalar(db, "select credential_hash from devices where id = %s", (soil.username,)) == before
    )
    assert scalar(db, "select active from devices where id = %s", (soil.username,)) is True
    # the wrong control password: refused by the broker, also 503
    wrong = s.model_copy(update={"mqtt_control_password": "not-it"})
    with TestClient(create_app(wrong)) as api:
        r = api.post(f"/v1/devices/{soil.username}/disable", headers=op)
        assert r.status_code == 503 and "control user" in r.json()["message"], r.text
    assert accepted(dynsec.broker.port, soil.username, soil.password)


# ----------------------------------------------------------------- CLI


def test_cli_rotates_and_disables_on_the_live_broker(
    dynsec: DynsecBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from coffeetrace.cli import app

    s = dynsec.settings
    for key, value in {
        "DATABASE_URL": s.database_url,
        "MQTT_URL": s.mqtt_url,
        "MQTT_BROKER_AUTH": "dynsec",
        "MQTT_CONTROL_PASSWORD": CONTROL_PASSWORD,
        "TOPIC_PREFIX": s.topic_prefix,
    }.items():
        monkeypatch.setenv(f"COFFEETRACE_{key}", value)
    port, soil = dynsec.broker.port, dynsec.device("soil")
    result = CliRunner().invoke(app, ["device", "rotate", soil.username])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip().splitlines()[-1]
    assert wait_until(lambda: not accepted(port, soil.username, soil.password), 10, 0.2)
    assert accepted(port, soil.username, new)
    result = CliRunner().invoke(app, ["device", "disable", soil.username])
    assert result.exit_code == 0, result.output
    assert wait_until(lambda: not accepted(port, soil.username, new), 10, 0.2)
    code = dynsec.tenant.world.coop["code"]
    result = CliRunner().invoke(
        app, ["device", "create", "--coop", code, "--kind", "phone", "--id", "coffeetrace-ingest"]
    )
    assert result.exit_code == 2 and "reserved" in result.output


def test_broker_config_leaves_out_a_device_with_a_platform_name(
    tmp_path: Path,
    settings: Settings,
    conn: psycopg.Connection,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from coffeetrace.cli import app

    # registered before names were checked and ids qualified with the cooperative's code
    # (migration 0049): only such an old row can still have a platform name
    conn.execute(
        "insert into devices (id, cooperative_id, kind, credential_hash)"
        " values ('coffeetrace-ingest', %(c)s, 'phone', %(h)s)",
        {"c": tenant.coop_id, "h": new_device_secret().hash},
    )
    conn.commit()
    monkeypatch.setenv("COFFEETRACE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COFFEETRACE_MQTT_INGEST_PASSWORD", INGEST_PASSWORD)
    monkeypatch.setenv("COFFEETRACE_MQTT_CONTROL_PASSWORD", CONTROL_PASSWORD)
    for mode in ("files", "dynsec"):
        monkeypatch.setenv("COFFEETRACE_MQTT_BROKER_AUTH", mode)
        out = tmp_path / mode
        result = CliRunner().invoke(app, ["broker-config", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "warning: device 'coffeetrace-ingest' left out" in result.output
        if mode == "files":
            users = [line.split(":", 1)[0] for line in (out / "passwords").read_text().splitlines()]
        else:
            users = [
                c["username"]
                for c in json.loads((out / "dynamic-security.json").read_text())["clients"]
            ]
        assert users.count("coffeetrace-ingest") == 1  # the ingest user itself
        assert tenant.world.devices["soil"].username in users


# ----------------------------------------------------------------- reconciliation


def test_registry_changes_made_behind_the_api_reach_the_broker(
    dynsec: DynsecBroker, conn: psycopg.Connection
) -> None:
    port = dynsec.broker.port
    soil, scale = dynsec.device("soil"), dynsec.device("scale")
    control = BrokerControl(dynsec.settings)
    assert accepted(port, soil.username, soil.password)
    with db.open_pool(dynsec.settings, name="reconcile-test") as pool:
        # psql: one device disabled, another deleted, a third inserted (no credential
        # the broker could know)
        conn.execute("update devices set active = false where id = %s", (soil.username,))
        conn.execute("delete from devices where id = %s", (scale.username,))
        conn.execute(
            "insert into devices (id, cooperative_id, kind, credential_hash)"
            " values (%s, %s, 'phone', %s)",
            (f"{dynsec.tenant.world.coop['code']}.by-hand", dynsec.tenant.coop_id, "x"),
        )
        conn.commit()
        assert accepted(port, soil.username, soil.password)  # the broker does not know yet
        done = reconcile_round(pool, control)
        assert done["disabled"] == [soil.username] and done["deleted"] == [scale.username]
        assert done["missing"] == [f"{dynsec.tenant.world.coop['code']}.by-hand"]
        assert not accepted(port, soil.username, soil.password)
        assert not accepted(port, scale.username, scale.password)
        again = reconcile_round(pool, control)  # nothing left to change
        assert again["disabled"] == again["enabled"] == again["deleted"] == []
        conn.execute("update devices set active = true where id = %s", (soil.username,))
        conn.commit()
        assert reconcile_round(pool, control)["enabled"] == [soil.username]
        assert accepted(port, soil.username, soil.password)
        # the platform's own clients are never touched
        assert accepted(port, dynsec.settings.mqtt_ingest_username, INGEST_PASSWORD, "probe-1")
