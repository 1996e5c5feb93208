"""MQTT connections of simulated devices: one paho client per device, as in the field.

Each device connects with its id as client id and its issued credential as username and
password, and leaves a last-will `{"online": false}` on its status topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

import paho.mqtt.client as paho

from coffeetrace.errors import ConfigError
from coffeetrace.mqtt import BrokerAddress, new_client, parse_broker_url

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self, broker_url: str, topic_prefix: str, credentials: dict[str, str], *, qos: int = 1
    ) -> None:
        self.addr = parse_broker_url(broker_url)
        self.prefix = topic_prefix
        self.credentials = credentials
        self.qos = qos
        self.clients: dict[str, paho.Client] = {}
        self._pending: deque[paho.MQTTMessageInfo] = deque()
        self._lock = threading.Lock()

    def topic(self, device_id: str, channel: str) -> str:
        return f"{self.prefix}/devices/{device_id}/{channel}"

    def connect(self, device_ids: Iterable[str], timeout_s: float = 30.0) -> None:
        ids = list(device_ids)
        connected = threading.Semaphore(0)
        refused: list[str] = []

        def on_connect(
            client: paho.Client, userdata: str, flags: object, rc: object, props: object = None
        ) -> None:
            if getattr(rc, "is_failure", False):
                refused.append(f"{userdata}: {rc}")
            connected.release()

        for device_id in ids:
            addr = BrokerAddress(
                self.addr.host,
                self.addr.port,
                device_id,
                self.credentials.get(device_id),
                self.addr.tls,
            )
            client = new_client(addr, device_id)
            client.user_data_set(device_id)
            client.max_inflight_messages_set(1000)
            client.will_set(self.topic(device_id, "status"), b'{"online":false}', qos=1)
            client.on_connect = on_connect
            client.reconnect_delay_set(1, 5)
            try:
                client.connect_async(self.addr.host, self.addr.port, keepalive=60)
            except OSError as exc:
                raise ConfigError(
                    f"cannot connect device {device_id} to the broker at "
                    f"{self.addr.redacted()}: {exc}"
                ) from exc
            client.loop_start()
            self.clients[device_id] = client
        deadline = time.monotonic() + timeout_s
        for _ in ids:
            if not connected.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self.close(graceful=False)
                raise ConfigError(
                    f"devices could not connect to the broker at "
                    f"{self.addr.redacted()} within {timeout_s:g} s"
                )
        if refused:
            self.close(graceful=False)
            raise ConfigError(
                f"the broker refused {len(refused)} device(s), e.g. {refused[0]}; "
                "are the device credentials in the broker's password file?"
            )
        # each as itself: the URL's user (ingest's, in the stack) is not theirs
        broker = BrokerAddress(self.addr.host, self.addr.port, tls=self.addr.tls).redacted()
        log.info("simulated_devices_connected devices=%d broker=%s", len(ids), broker)

    def publish(self, device_id: str, channel: str, payload: bytes) -> None:
        info = self.clients[device_id].publish(
            self.topic(device_id, channel), payload, qos=self.qos
        )
        with self._lock:
            self._pending.append(info)
            # keep the deque short: drop the already-acknowledged head
            while self._pending and self._pending[0].is_published():
                self._pending.popleft()

    def in_flight(self) -> int:
        with self._lock:
            while self._pending and self._pending[0].is_published():
                self._pending.popleft()
            return len(self._pending)

    def wait_published(self, timeout_s: float = 120.0) -> bool:
        """Wait until the broker acknowledged every publish (QoS 1); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, *, graceful: bool = True) -> None:
        for device_id, client in self.clients.items():
            if graceful:
                # a clean disconnect suppresses the will, so say goodbye explicitly
                client.publish(self.topic(device_id, "status"), b'{"online":false}', qos=self.qos)
        if graceful:
            self.wait_published(10)
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.clients.clear()
