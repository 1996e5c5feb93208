"""The broker's view of identities: names the platform keeps for itself, the dynamic
security plugin's model (roles, clients, default access) and a small synchronous client
that changes it over `$CONTROL/dynamic-security/v1`.

Every device is a dynsec client whose username *and* client id are its device id (the
`clientid` attribute pins it), with a role of its own that allows publishing to exactly
its `telemetry`, `harvest` and `status` topics (Mosquitto 2.0's dynsec does not expand
`%u` in ACL topics, so the role cannot be shared). Nobody may subscribe except the ingest
user; the ingest user is not pinned (several ingest processes share one subscription
under different client ids), so no device can connect with the ingest's client id.

Used by `coffeetrace broker-config` (the initial `dynamic-security.json`, from the hashes
the registry stores), by the API and CLI and by the simulators' seeding (each change at
the moment the plaintext exists). A ground module: it imports nothing of api/, ingest/,
trace/ or simulators/.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from coffeetrace.errors import ServiceUnavailable, ValidationFailed
from coffeetrace.mqtt import new_client, parse_broker_url
from coffeetrace.settings import Settings

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
DEVICE_TOPICS = ("telemetry", "harvest", "status")
INGEST_ROLE = "coffeetrace-ingest"
CONTROL_ROLE = "coffeetrace-control"
# Client ids and user names the platform itself uses start with this (the ingest's
# `coffeetrace-ingest`, scaled out as `coffeetrace-ingest-2`; broker checks; control).
PLATFORM_NAME_PREFIX = "coffeetrace-"
# Devices per control message of `upsert_devices`: the plugin saves its whole file after
# each command, so a message of thousands of devices would outlast the answer's timeout.
UPSERT_BATCH = 50
# Devices may neither subscribe nor receive; only the roles below open what they need.
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


# --------------------------------------------------------------------------- names


def ingest_username(settings: Settings) -> str:
    """The broker user ingest connects as: the one in mqtt_url, else the setting."""
    if settings.mqtt_url:
        user = parse_broker_url(settings.mqtt_url).username
        if user:
            return user
    return settings.mqtt_ingest_username


def reserved_names(settings: Settings) -> frozenset[str]:
    """User names and client ids of the platform (lower case): no device may take one."""
    names = {
        settings.mqtt_ingest_username,
        ingest_username(settings),
        settings.mqtt_client_id,
        settings.mqtt_control_username,
    }
    return frozenset(n.lower() for n in names if n)


def device_name_problem(settings: Settings, device_id: str) -> str | None:
    """Why `device_id` cannot be a device's broker identity, or None when it can."""
    name = device_id.lower()
    if not device_id or any(c in device_id for c in "/+#") or device_id.startswith("$"):
        return (
            f"device id {device_id!r} must be one topic level: no '/', '+' or '#', and it "
            "may not start with '$'"
        )
    if name in reserved_names(settings):
        return (
            f"device id {device_id!r} is reserved: the platform's broker clients (ingest, "
            "control) use it as user name or client id, and a device under that name could "
            "take over their sessions"
        )
    prefixes = {PLATFORM_NAME_PREFIX, settings.mqtt_client_id.lower() + "-"}
    for prefix in sorted(prefixes):
        if name.startswith(prefix):
            return (
                f"device id {device_id!r} is reserved: names starting with {prefix!r} "
                "are the platform's own broker client ids (ingest processes, checks, "
                "control)"
            )
    return None


def check_device_name(settings: Settings, device_id: str | None) -> None:
    """ValidationFailed (422) when a requested device id is one the platform keeps."""
    if device_id is None:
        return
    problem = device_name_problem(settings, device_id)
    if problem:
        raise ValidationFailed(problem, field="device_id", reason="reserved_name")


# --------------------------------------------------------------------------- dynsec model


def device_topics(topic_prefix: str, device_id: str) -> list[str]:
    return [f"{topic_prefix}/devices/{device_id}/{leaf}" for leaf in DEVICE_TOPICS]


def device_rolename(device_id: str) -> str:
    return f"device:{device_id}"


def device_role(topic_prefix: str, device_id: str) -> dict[str, Any]:
    return {
        "rolename": device_rolename(device_id),
        "acls": [
            {"acltype": "publishClientSend", "topic": t, "allow": True}
            for t in device_topics(topic_prefix, device_id)
        ],
    }


def ingest_role(topic_prefix: str) -> dict[str, Any]:
    devices = f"{topic_prefix}/devices/+/+"
    acls = [
        ("subscribePattern", devices),
        ("subscribePattern", f"$share/+/{devices}"),
        ("publishClientReceive", devices),
        # health checks: mosquitto_sub -t '$SYS/broker/uptime'
        ("subscribePattern", "$SYS/broker/uptime"),
        ("publishClientReceive", "$SYS/broker/uptime"),
    ]
    return {
        "rolename": INGEST_ROLE,
        "acls": [{"acltype": kind, "topic": topic, "allow": True} for kind, topic in acls],
    }


def control_role() -> dict[str, Any]:
    topic = "$CONTROL/dynamic-security/#"
    return {
        "rolename": CONTROL_ROLE,
        "acls": [
            {"acltype": kind, "topic": topic, "allow": True}
            for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
        ],
    }


def hash_fields(mosquitto_hash: str) -> dict[str, Any]:
    """`$7$iterations$salt$digest` (PBKDF2-SHA512, base64) as dynsec's client fields."""
    try:
        _, kind, iterations, salt, digest = mosquitto_hash.split("$")
    except ValueError:
        kind = ""
    if kind != "7":
        raise ValueError("not a Mosquitto $7$ (PBKDF2-SHA512) hash")
    return {"password": digest, "salt": salt, "iterations": int(iterations)}


@dataclass(frozen=True)
class DynsecDevice:
    id: str
    credential_hash: str
    active: bool = True


def dynsec_config(
    topic_prefix: str,
    *,
    ingest_user: str,
    ingest_hash: str,
    control_user: str,
    control_hash: str,
    devices: Iterable[DynsecDevice],
) -> dict[str, Any]:
    """A whole dynamic-security.json (Mosquitto 2.0's shape) for these identities."""
    clients: list[dict[str, Any]] = [
        {
            "username": control_user,
            "textname": "coffeetrace API and CLI (credential changes)",
            "roles": [{"rolename": CONTROL_ROLE}],
            **hash_fields(control_hash),
        },
        {
            "username": ingest_user,
            "textname": "coffeetrace ingest",
            "roles": [{"rolename": INGEST_ROLE}],
            **hash_fields(ingest_hash),
        },
    ]
    roles = [control_role(), ingest_role(topic_prefix)]
    for d in devices:
        client = {
            "username": d.id,
            "clientid": d.id,
            "roles": [{"rolename": device_rolename(d.id)}],
            **hash_fields(d.credential_hash),
        }
        if not d.active:
            client["disabled"] = True
        clients.append(client)
        roles.append(device_role(topic_prefix, d.id))
    return {
        "clients": clients,
        "roles": roles,
        "groups": [],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


# --------------------------------------------------------------------------- control client


class BrokerControl:
    """Applies device changes to the broker at once when COFFEETRACE_MQTT_BROKER_AUTH is
    `dynsec`; does nothing otherwise (`files`: broker-config and a reload apply them)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def live(self) -> bool:
        return self.settings.mqtt_broker_auth == "dynsec"

    def upsert_device(self, device_id: str, password: str, *, active: bool = True) -> None:
        """The device as a fresh dynsec client with this password (drops its connections)."""
        if not self.live:
            return
        commands = self._upsert_commands(device_id, password)
        if not active:
            commands.append({"command": "disableClient", "username": device_id})
        # the first two may find nothing to delete
        self.run(commands, may_fail={0, 1})

    def upsert_devices(self, passwords: Mapping[str, str]) -> None:
        """`upsert_device` for each device (active) of `passwords`, a batch per message."""
        if not self.live:
            return
        items = list(passwords.items())
        for start in range(0, len(items), UPSERT_BATCH):
            commands: list[dict[str, Any]] = []
            may_fail: set[int] = set()
            for device_id, password in items[start : start + UPSERT_BATCH]:
                may_fail |= {len(commands), len(commands) + 1}  # nothing to delete yet
                commands += self._upsert_commands(device_id, password)
            self.run(commands, may_fail=may_fail)

    def _upsert_commands(self, device_id: str, password: str) -> list[dict[str, Any]]:
        role = device_role(self.settings.topic_prefix, device_id)
        return [
            {"command": "deleteClient", "username": device_id},
            {"command": "deleteRole", "rolename": role["rolename"]},
            {"command": "createRole", **role},
            {
                "command": "createClient",
                "username": device_id,
                "password": password,
                "clientid": device_id,
                "roles": [{"rolename": role["rolename"]}],
            },
        ]

    def set_device_active(self, device_id: str, active: bool) -> None:
        if not self.live:
            return
        command = "enableClient" if active else "disableClient"
        try:
            self.run([{"command": command, "username": device_id}])
        except ServiceUnavailable as exc:
            if "not found" in exc.message.lower() and not active:
                return  # a client the broker does not know cannot log in anyway
            if "not found" in exc.message.lower():
                raise ServiceUnavailable(
                    f"the broker does not know device {device_id!r} (its dynamic security "
                    "file predates it): issue a new credential (POST /v1/devices/{id}/"
                    "credential), which creates it, or rerun `coffeetrace broker-config` and "
                    "restart the broker",
                    device_id=device_id,
                ) from None
            raise

    def reconcile(self, devices: Mapping[str, bool]) -> dict[str, list[str]]:
        """Hold the broker's device clients to the registry's `devices` {id: active}: a
        client enabled or disabled as its device is, a device client whose device is gone
        deleted with its role. A registered device the broker does not know cannot be
        created here (the registry keeps only its password's hash): it is reported as
        "missing", for a new credential or `coffeetrace broker-config`. Returns the ids
        {"enabled", "disabled", "deleted", "missing"}; nothing when not live."""
        done: dict[str, list[str]] = {"enabled": [], "disabled": [], "deleted": [], "missing": []}
        if not self.live:
            return done
        (listing,) = self.run([{"command": "listClients", "verbose": True}])
        clients = {
            c["username"]: c
            for c in listing.get("data", {}).get("clients", [])
            if isinstance(c, dict)
            and isinstance(c.get("username"), str)
            # a device client is one with its own device role (how this module makes them);
            # any other client of the broker is not the registry's business
            and {"rolename": device_rolename(c["username"])} in c.get("roles", [])
        }
        commands: list[dict[str, Any]] = []
        for device_id, active in sorted(devices.items()):
            client = clients.get(device_id)
            if client is None:
                if active:
                    done["missing"].append(device_id)
            elif active and client.get("disabled"):
                commands.append({"command": "enableClient", "username": device_id})
                done["enabled"].append(device_id)
            elif not active and not client.get("disabled"):
                commands.append({"command": "disableClient", "username": device_id})
                done["disabled"].append(device_id)
        for username in sorted(set(clients) - set(devices)):
            commands += [
                {"command": "deleteClient", "username": username},
                {"command": "deleteRole", "rolename": device_rolename(username)},
            ]
            done["deleted"].append(username)
        for start in range(0, len(commands), UPSERT_BATCH * 2):
            self.run(commands[start : start + UPSERT_BATCH * 2])
        return done

    def run(
        self, commands: list[dict[str, Any]], *, may_fail: set[int] | frozenset[int] = frozenset()
    ) -> list[dict[str, Any]]:
        """Send `commands` in one control message and wait for their responses.

        ServiceUnavailable when the broker cannot be reached, refuses the control user,
        does not answer within COFFEETRACE_MQTT_CONTROL_TIMEOUT_S, or reports an error for
        a command whose index is not in `may_fail`.
        """
        s = self.settings
        timeout = s.mqtt_control_timeout_s
        addr = parse_broker_url(s.effective_mqtt_url())
        if not s.mqtt_control_password:
            raise ServiceUnavailable(
                "COFFEETRACE_MQTT_BROKER_AUTH is dynsec but COFFEETRACE_MQTT_CONTROL_PASSWORD is "
                "empty: the broker's credentials cannot be changed",
                setting="COFFEETRACE_MQTT_CONTROL_PASSWORD",
            )
        token = uuid.uuid4().hex
        tagged = [{**c, "correlationData": f"{token}-{i}"} for i, c in enumerate(commands)]
        responses: dict[int, dict[str, Any]] = {}
        done = threading.Event()
        failure: list[str] = []

        def on_connect(
            client: paho.Client, userdata: object, flags: object, reason: Any, props: object = None
        ) -> None:
            if reason.is_failure:
                failure.append(
                    f"the broker refused the control user {s.mqtt_control_username!r}: {reason}"
                )
                done.set()
                return
            client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(
            client: paho.Client, userdata: object, mid: int, reasons: Any, props: object = None
        ) -> None:
            if any(r.is_failure for r in reasons):
                failure.append(
                    f"the control user {s.mqtt_control_username!r} may not read "
                    f"{RESPONSE_TOPIC} (is the dynamic security plugin loaded?)"
                )
                done.set()
                return
            client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)

        def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
            try:
                body = json.loads(msg.payload)
            except ValueError:
                return
            for r in body.get("responses", []):
                tag = str(r.get("correlationData", ""))
                if tag.startswith(token + "-"):
                    responses[int(tag.rsplit("-", 1)[1])] = r
            if len(responses) == len(tagged):
                done.set()

        client = new_client(addr, f"{PLATFORM_NAME_PREFIX}control-{token[:12]}")
        client.username_pw_set(s.mqtt_control_username, s.mqtt_control_password)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_timeout = timeout
        try:
            client.connect(addr.host, addr.port, keepalive=30)
        except OSError as exc:
            raise ServiceUnavailable(
                f"cannot reach the MQTT broker at {addr.redacted()} to "
                f"change credentials: {exc.strerror or exc}; nothing was "
                "changed",
                broker=addr.redacted(),
            ) from exc
        client.loop_start()
        try:
            answered = done.wait(timeout)
        finally:
            client.disconnect()
            client.loop_stop()
        if failure:
            raise ServiceUnavailable(failure[0] + "; nothing was changed", broker=addr.redacted())
        if not answered:
            raise ServiceUnavailable(
                f"the MQTT broker at {addr.redacted()} did not confirm the credential change "
                f"within {timeout:g} s (is its dynamic security plugin loaded?); nothing was "
                "changed",
                broker=addr.redacted(),
            )
        ordered = [responses[i] for i in range(len(tagged))]
        for i, r in enumerate(ordered):
            if r.get("error") and i not in may_fail:
                raise ServiceUnavailable(
                    f"the broker refused {r.get('command')}: {r['error']}",
                    broker=addr.redacted(),
                    command=r.get("command"),
                )
        log.info(
            "broker_control commands=%d kinds=%s",
            len(commands),
            ",".join(sorted({c["command"] for c in commands})),
        )
        return ordered
