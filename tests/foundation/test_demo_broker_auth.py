"""The stack's embedded Mosquitto (`coffeetrace up --demo`, `coffeetrace simulate`)
authenticates as production does, started the way the stack starts it (`start_servers`):

- an anonymous client is refused at CONNACK; a wrong password too;
- a device registered before the broker started (the dynamic security file written from
  the registry) and one seeded by the simulator afterwards (given to the running broker
  over `$CONTROL`, its password in `simulator-credentials.json`) connect with their own
  credentials;
- a device's publish to another device's topic reaches neither ingest, which consumes
  with its own user, nor any subscriber with the ingest's credentials;
- a second stack beside the first (a reused broker) logs in with the stored passwords.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from contextlib import ExitStack
from typing import Any

import paho.mqtt.client as paho
import psycopg
import pytest

from coffeetrace.cli import runner
from coffeetrace.cli.runner import start_servers
from coffeetrace.embedded import broker_users_path, find_dynsec_plugin, free_port, port_answers
from coffeetrace.ingest.service import IngestService
from coffeetrace.mqtt import check_broker, new_client, parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.simulators.plan import WorldSpec
from coffeetrace.simulators.simulate import SimOptions, credentials_path, simulate
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.ingest.helpers import Publisher, now_ms, scalar, wait_until

needs_dynsec = pytest.mark.skipif(
    shutil.which("mosquitto") is None or find_dynsec_plugin() is None,
    reason="Mosquitto with its dynamic security plugin is not installed",
)


def connack(port: int, client_id: str, user: str | None = None, password: str | None = None) -> Any:
    """The CONNACK reason code a client gets (it disconnects at once)."""
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(
        client: paho.Client, userdata: object, flags: object, reason: object, props: object = None
    ) -> None:
        result["reason"] = reason
        done.set()

    client = new_client(parse_broker_url(f"mqtt://127.0.0.1:{port}"), client_id)
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return result["reason"]


def reading(seq: int) -> dict[str, object]:
    return {"seq": seq, "ts": now_ms(), "values": {"soilMoistureVwc": 30.0}}


@needs_dynsec
def test_the_stacks_broker_refuses_anonymous_clients_and_keeps_devices_to_their_topics(
    settings: Settings, conn: psycopg.Connection, keys: KeyRing
) -> None:
    world = make_world(conn, keys=keys)  # registered before the broker starts
    conn.commit()
    soil, scale = world.devices["soil"], world.devices["scale"]
    port = free_port()
    wanted = settings.model_copy(update={"mqtt_url": "", "embedded_mqtt_port": port})
    said: list[str] = []
    with ExitStack() as stack:
        s = start_servers(wanted, stack, said.append)
        assert s.mqtt_broker_auth == "dynsec"
        ingest_user = parse_broker_url(s.mqtt_url).username
        assert ingest_user == s.mqtt_ingest_username
        assert any(str(broker_users_path(s)) in line for line in said), said

        # anonymous: refused, whatever the client id; a wrong password too
        assert connack(port, f"anon-{uuid.uuid4().hex[:8]}").is_failure
        assert connack(port, soil.username).is_failure
        assert connack(port, soil.username, soil.username, soil.password + "x").is_failure
        # a device of the registry, with its own credentials: accepted
        assert not connack(port, soil.username, soil.username, soil.password).is_failure

        # devices the simulator seeds now are given to the running broker; their passwords
        # are where the demo says
        spec = WorldSpec(coop_code=f"auth-{uuid.uuid4().hex[:6]}", seed=4, farms=1, trees=20)
        sim = simulate(s, SimOptions(spec=spec, publish=False), say=said.append, progress=False)
        saved = json.loads(credentials_path(s).read_text())
        for device_id in sim.world.device_ids:
            assert saved[device_id] == sim.world.credentials[device_id]
            assert not connack(port, device_id, device_id, saved[device_id]).is_failure
        node = next(d.id for d in sim.world.plan.devices if d.kind == "soil_node")

        # ingest consumes with its own user; a subscriber with the same credentials too
        received: list[str] = []
        subscribed = threading.Event()
        addr = parse_broker_url(s.mqtt_url)
        sub = new_client(addr, f"{s.mqtt_client_id}-probe")
        sub.on_connect = lambda c, u, f, r, p=None: c.subscribe(f"{s.topic_prefix}/devices/+/+", 1)
        sub.on_subscribe = lambda c, u, mid, reasons, p=None: (
            not any(r.is_failure for r in reasons) and subscribed.set()
        )
        sub.on_message = lambda c, u, m: received.append(m.topic)
        sub.connect(addr.host, addr.port)
        sub.loop_start()
        svc = IngestService(s)
        svc.start()
        try:
            assert subscribed.wait(10), "the ingest user may not subscribe"
            pub = Publisher(f"mqtt://127.0.0.1:{port}", node, username=node, password=saved[node])
            assert pub.connected.wait(10)
            # to another device's topic (a registry device, and one of its own farm):
            # dropped by the broker, which still sends the PUBACK (MQTT 3.1.1)
            for other in (soil.username, scale.username):
                pub.publish(f"{s.topic_prefix}/devices/{other}/telemetry", reading(1))
            pub.publish(f"{s.topic_prefix}/devices/{node}/telemetry", reading(2))
            assert pub.wait_all_acked(10)
            pub.close()
            db = s.database_url
            assert wait_until(lambda: scalar(db, "select count(*) from ingest_messages") >= 1)
            assert wait_until(lambda: len(received) >= 1)
            time.sleep(1)  # the forged messages, had they passed, came first
        finally:
            svc.stop()
            sub.disconnect()
            sub.loop_stop()
        assert received == [f"{s.topic_prefix}/devices/{node}/telemetry"]
        with psycopg.connect(db) as c:
            rows = c.execute("select device_id, msg_id from ingest_messages").fetchall()
        assert rows == [(node, "2")]

        # a second stack on the same data folder reuses the broker, logged in as ingest
        with ExitStack() as second:
            again = start_servers(wanted, second, said.append)
            assert again.mqtt_url == s.mqtt_url
            assert any("already running" in line for line in said)
        check_broker(s.mqtt_url)
    assert not port_answers("127.0.0.1", port)


def test_without_the_plugin_the_stack_says_its_broker_takes_anyone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "find_dynsec_plugin", lambda: None)
    port = free_port()
    said: list[str] = []
    with ExitStack() as stack:
        s = runner.start_servers(
            settings.model_copy(update={"mqtt_url": "", "embedded_mqtt_port": port}),
            stack,
            said.append,
        )
        assert s.mqtt_broker_auth == "none"
        assert s.mqtt_url == f"mqtt://127.0.0.1:{port}"
        check_broker(s.mqtt_url)
    assert any(line.startswith("warning: this broker takes any client") for line in said)
