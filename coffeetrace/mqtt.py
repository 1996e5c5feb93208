"""Broker URLs and a reachability check shared by ingest, the API's /readyz and the simulators."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from coffeetrace.errors import ConfigError


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str, setting: str = "COFFEETRACE_MQTT_URL") -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ConfigError(
            f"{setting}={url!r} is not a broker URL; expected mqtt://[user:password@]host[:port]",
            setting=setting,
        )
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"{setting}={url!r} has an invalid port", setting=setting) from exc
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def new_client(
    addr: BrokerAddress,
    client_id: str = "",
    *,
    clean_session: bool = True,
    protocol: paho.MQTTProtocolVersion = paho.MQTTv311,
) -> paho.Client:
    """A paho client configured for `addr` (not yet connected)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session if protocol != paho.MQTTv5 else None,
        protocol=protocol,
    )
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set()
    return client


def check_broker(url: str, timeout_s: float = 5.0, setting: str = "COFFEETRACE_MQTT_URL") -> None:
    """Connect once and disconnect; ConfigError naming the setting when that fails."""
    addr = parse_broker_url(url, setting)
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(
        client: paho.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        result["rc"] = rc
        done.set()

    client = new_client(addr, f"coffeetrace-check-{uuid.uuid4().hex[:8]}")
    client.on_connect = on_connect
    # No bare TCP probe first: a connection that sends nothing is an error for some
    # brokers (the in-process one leaves its stream open); a real CONNECT says more.
    client.connect_timeout = timeout_s
    try:
        client.connect(addr.host, addr.port, keepalive=10)
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the MQTT broker at {addr.redacted()}: {exc.strerror or exc}. "
            f"Check {setting} (leave it empty to use the embedded broker).",
            setting=setting,
        ) from exc
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise ConfigError(
                f"the MQTT broker at {addr.redacted()} did not answer CONNECT "
                f"within {timeout_s:g} s. Check {setting}.",
                setting=setting,
            )
        rc = result["rc"]
        if getattr(rc, "is_failure", False):
            raise ConfigError(
                f"the MQTT broker at {addr.redacted()} refused the connection: {rc}. "
                f"Check the user and password in {setting}.",
                setting=setting,
            )
    finally:
        client.disconnect()
        client.loop_stop()
