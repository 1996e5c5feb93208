"""Publishing and waiting helpers for the ingest tests (real broker, real database)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as paho
import psycopg

from coffeetrace.mqtt import new_client, parse_broker_url


def now_ms() -> int:
    return int(time.time() * 1000)


class Publisher:
    """A device-like QoS 1 publisher: keeps every message until its PUBACK, republishes the
    unacknowledged ones after a reconnect (at-least-once, as firmware does)."""

    def __init__(
        self,
        url: str,
        client_id: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        addr = parse_broker_url(url)
        self.client = new_client(addr, client_id or f"pub-{uuid.uuid4().hex[:8]}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0, 1)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, bytes]] = {}
        self._early: set[int] = set()
        self._acked = 0
        self.connected = threading.Event()
        self.connect_reason: Any = None
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect(addr.host, addr.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any = None
    ) -> None:
        self.connect_reason = reason
        if reason.is_failure:
            return
        self.connected.set()
        with self._lock:
            stale = list(self._pending.values())
            self._pending.clear()
        for topic, payload in stale:
            self.publish(topic, payload)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any = None
    ) -> None:
        with self._lock:
            if self._pending.pop(mid, None) is not None:
                self._acked += 1
            else:
                self._early.add(mid)  # acked before publish() recorded it

    def publish(self, topic: str, payload: bytes | str | dict | list) -> None:
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        data = payload.encode() if isinstance(payload, str) else payload
        # paho's lock is held while on_publish runs: never call paho with ours held
        info = self.client.publish(topic, data, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self._acked += 1
            else:
                self._pending[info.mid] = (topic, data)

    def wait_all_acked(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(url: str, items: Iterable[tuple[str, Any]], timeout: float = 60) -> None:
    pub = Publisher(url)
    try:
        assert pub.connected.wait(10), "publisher could not connect"
        for topic, payload in items:
            pub.publish(topic, payload)
        assert pub.wait_all_acked(timeout), "broker did not acknowledge every message"
    finally:
        pub.close()


def scalar(db_url: str, sql: str, params: Any = None) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


def wait_until(check: Callable[[], bool], timeout: float = 30, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def telemetry_burst(prefix: str, device: str, seqs: Iterable[int]) -> Iterable[tuple[str, str]]:
    """One reading per message, `seq` = its idempotency key; the value is unique per seq
    (below 100,000), so a duplicated reading shows in a distinct count."""
    topic = f"{prefix}/devices/{device}/telemetry"
    for seq in seqs:
        yield (
            topic,
            json.dumps(
                {"seq": seq, "ts": now_ms(), "values": {"soilMoistureVwc": (seq % 100_000) / 1000}}
            ),
        )


def stored_summary(db_url: str) -> tuple[int, int, int]:
    """(ledger keys, readings, distinct reading keys): equal when nothing is duplicated."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select (select count(*) from ingest_messages), count(*), "
            "count(distinct (device_id, time, metric, value)) from sensor_readings"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def connect_result(
    port: int, user: str, password: str, client_id: str, timeout: float = 10
) -> object:
    """The CONNACK reason a device gets (connects and disconnects at once)."""
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(
        client: paho.Client, userdata: object, flags: object, reason: object, props: object = None
    ) -> None:
        result["reason"] = reason
        done.set()

    client = new_client(parse_broker_url(f"mqtt://127.0.0.1:{port}"), client_id)
    client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(timeout), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return result["reason"]
