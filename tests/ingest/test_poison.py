"""Poison messages, sent from outside as a device would (paho, and `mosquitto_pub` for raw
bytes), to `coffeetrace ingest` running as its own process on the shipped broker config:
each costs only itself. Every good message of another device is stored once, every bad
one is dead-lettered with its reason, and the consumer stays up and ready."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest

from coffeetrace.credentials import new_device_secret
from coffeetrace.embedded import free_port
from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from coffeetrace.trace import registry
from tests.factories import World
from tests.ingest.helpers import Publisher, now_ms, scalar, wait_until
from tests.ingest.procs import IngestProcess

pytestmark = pytest.mark.slow


def _register_soil(conn: psycopg.Connection, world: World) -> str:
    device = registry.register_device(
        conn, world.coop["id"], "soil_node", plot_id=world.plot["id"], secret=new_device_secret()
    )
    conn.commit()
    return device.username


def _poisons(t: int) -> list[tuple[str, bytes, str]]:
    """(kind, payload, expected reason code) of every poison class of the issue."""
    one = {"seq": 1, "ts": t, "values": {"temperature": 20}}

    def obj(**changes: object) -> bytes:
        return json.dumps({**one, **changes}).encode()

    return [
        # a NUL escaped in JSON: PostgreSQL text cannot hold it
        (
            "telemetry",
            b'{"seq":2,"ts":%d,"tree":"T-1\\u0000","values":{"temperature":20}}' % t,
            "bad_text",
        ),
        ("harvest", b'{"seq":3,"ts":%d,"tree":"T-00000\\u0000","cherry_kg":2}' % t, "bad_text"),
        ("telemetry", b"[" * 1000 + b"]" * 1000, "invalid_json"),  # beyond the parser's limit
        ("telemetry", b"[" * 20 + b"]" * 20, "too_deep"),  # beyond ingest_max_json_depth
        (
            "telemetry",
            b'{"seq":4,"ts":%d,"tree":"\\ud800","values":{"temperature":20}}' % t,
            "invalid_json",
        ),  # a lone surrogate
        (
            "telemetry",
            b'{"seq":5,"ts":%d,"tree":"\xff\xfe","values":{"temperature":20}}' % t,
            "invalid_json",
        ),  # not UTF-8
        ("telemetry", b"[" + b",".join([obj(seq=6)] * 15_000) + b"]", "payload_too_large"),
        ("telemetry", b"[" + b",".join([b"{}"] * 10_000) + b"]", "too_many_sets"),
        ("telemetry", obj(seq=7, values={"temperature": True}), "invalid"),
        (
            "harvest",
            json.dumps({"seq": 8, "ts": t, "tree": "T-00000", "cherry_kg": True}).encode(),
            "invalid",
        ),
        ("telemetry", obj(seq=9, values={"temperature": "20"}), "invalid"),
        (
            "telemetry",
            b'{"seq":10,"ts":%d,"values":{"temperature":1e400}}' % t,
            "bad_number",
        ),  # beyond float range
        ("telemetry", obj(seq=123456789012345678901234567890), "invalid"),
        ("telemetry", b'{"seq":11,"ts":%d,"values":{"temperature":NaN}}' % t, "bad_number"),
        ("telemetry", b'{"seq":12,"ts":%d,"values":{"temperature":Infinity}}' % t, "bad_number"),
        ("status", b'{"online":1}', "invalid"),
        # passes validation, but a constraint added behind the application's back refuses it
        ("telemetry", obj(seq=13, values={"temperature": 13.37}), "store_refused"),
    ]


def _get(port: int, path: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _mosquitto_pub(broker: str, topic: str, payload: bytes, tmp: Path) -> None:
    """Publish raw bytes with the Mosquitto client, as an attacker with a shell would."""
    host_port = broker.removeprefix("mqtt://").split("@")[-1]
    host, port = host_port.split(":")
    path = tmp / "payload.bin"
    path.write_bytes(payload)
    subprocess.run(
        ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-f", str(path)],
        check=True,
        timeout=30,
    )


def test_no_poison_message_keeps_another_devices_data_out(
    ingest_settings: Settings, world: World, conn: psycopg.Connection, tmp_path: Path
) -> None:
    s, db = ingest_settings, ingest_settings.database_url
    attacker = world.devices["soil"].username
    good_device = _register_soil(conn, world)
    conn.execute("alter table sensor_readings add constraint poison_check check (value <> 13.37)")
    conn.commit()
    port = free_port()
    proc = IngestProcess(s, tmp_path / "ingest.log", COFFEETRACE_INGEST_METRICS_PORT=str(port))
    proc.start()
    poisons = _poisons(now_ms())
    pub = Publisher(s.mqtt_url)
    good_seq = 0
    try:
        assert pub.connected.wait(10)
        for kind, payload, _code in poisons:
            topic = f"{s.topic_prefix}/devices/{attacker}/{kind}"
            if shutil.which("mosquitto_pub") and b"\xff" in payload:
                _mosquitto_pub(s.mqtt_url, topic, payload, tmp_path)
            else:
                pub.publish(topic, payload)
            for _ in range(5):  # each poison followed by good messages of another device
                good_seq += 1
                pub.publish(
                    f"{s.topic_prefix}/devices/{good_device}/telemetry",
                    {"seq": good_seq, "ts": now_ms(), "values": {"soilMoistureVwc": good_seq / 10}},
                )
        assert pub.wait_all_acked(60)
        assert wait_until(
            lambda: (
                scalar(
                    db, "select count(*) from sensor_readings where device_id = %s", (good_device,)
                )
                >= good_seq
            ),
            timeout=60,
        )
        assert wait_until(
            lambda: (
                scalar(db, "select count(*) from dead_letters where device_id = %s", (attacker,))
                >= len(poisons)
            ),
            timeout=30,
        )
        assert proc.proc is not None and proc.proc.poll() is None, "ingest died"
        assert _get(port, "/healthz")[0] == 200
        status, body = _get(port, "/readyz")
        assert status == 200, body
    finally:
        pub.close()
        code = proc.terminate()
    assert code == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    with psycopg.connect(db) as c:
        good = c.execute(
            "select count(*), count(distinct value) from sensor_readings where device_id = %s",
            (good_device,),
        ).fetchone()
        dead = c.execute(
            "select reason, payload, payload_encoding from dead_letters "
            "where device_id = %s order by id",
            (attacker,),
        ).fetchall()
        stored_bad = c.execute(
            "select count(*) from sensor_readings where device_id = %s", (attacker,)
        ).fetchone()
    assert good == (good_seq, good_seq)  # every good one, once
    assert stored_bad == (0,)
    assert sorted(r[0].split(":")[0] for r in dead) == sorted(p[2] for p in poisons)
    by_code = {r[0].split(":")[0]: r for r in dead}
    assert by_code["invalid_json"][0]
    assert any(r[2] == "hex" for r in dead)  # the bytes that are not UTF-8, kept as hex
    assert "SQLSTATE 23514" in by_code["store_refused"][0]
    assert "must be a JSON number (got the boolean true)" in by_code["invalid"][0] or any(
        "the boolean true" in r[0] for r in dead
    )
    # the NUL payload is kept as it came: the JSON escape, not the character
    assert any("T-1\\u0000" in r[1] for r in dead)


def test_a_dead_worker_ends_ingest_with_a_non_zero_exit(
    ingest_settings: Settings, world: World, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    proc = IngestProcess(ingest_settings, log)
    proc.start()
    assert proc.proc is not None
    children = psutil.Process(proc.proc.pid).children(recursive=True)
    # the worker, not multiprocessing's resource tracker
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert workers, [c.cmdline() for c in children]
    workers[0].send_signal(signal.SIGKILL)
    try:
        code = proc.proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("ingest went on without its worker") from None
    proc.close_log()
    text = log.read_text()
    assert code == 1, text[-2000:]
    assert "ingest failed: the worker process exited" in text
    assert "committed and acknowledged" not in text


def test_readyz_reports_a_stall_and_recovers(
    ingest_settings: Settings, world: World, conn: psycopg.Connection
) -> None:
    port = free_port()
    s = ingest_settings.model_copy(update={"ingest_metrics_port": port, "ingest_stall_s": 1.0})
    soil = world.devices["soil"].username
    svc = IngestService(s)
    svc.start()
    blocker = psycopg.connect(s.database_url)
    try:
        assert wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout=10)
        # behind the application's back: the ledger locked, so no batch can commit
        blocker.execute("lock table ingest_messages in access exclusive mode")
        pub = Publisher(s.mqtt_url)
        try:
            assert pub.connected.wait(10)
            for seq in range(20):
                pub.publish(
                    f"{s.topic_prefix}/devices/{soil}/telemetry",
                    {"seq": seq, "ts": now_ms(), "values": {"temperature": 20}},
                )
            assert pub.wait_all_acked(30)
            assert wait_until(lambda: _get(port, "/readyz")[0] == 503, timeout=20)
            status, body = _get(port, "/readyz")
            assert status == 503 and body["reason"].startswith("stalled:"), body
            assert _get(port, "/healthz")[0] == 200  # alive, just not making progress
            blocker.rollback()  # the lock goes: everything commits
            assert wait_until(
                lambda: scalar(s.database_url, "select count(*) from sensor_readings") == 20,
                timeout=30,
            )
            assert wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout=10)
        finally:
            pub.close()
    finally:
        blocker.close()
        svc.stop()


def test_ingest_health_endpoints_answer_unknown_paths_with_404(
    ingest_settings: Settings, world: World
) -> None:
    port = free_port()
    svc = IngestService(ingest_settings.model_copy(update={"ingest_metrics_port": port}))
    svc.start()
    try:
        status, body = _get(port, "/nothing")
        assert status == 404 and "readyz" in body["message"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b"coffeetrace_ingest_dead_letters_dropped" in r.read()
    finally:
        svc.stop()
