"""The broker's identities from the registry (`coffeetrace broker-config`).

Device hashes are already stored in Mosquitto's `$7$` format, so both outputs are written
without knowing any device secret:

- `dynsec` (COFFEETRACE_MQTT_BROKER_AUTH=dynsec): `dynamic-security.json` for Mosquitto's
  dynamic security plugin: each device pinned to its own client id, allowed to publish to
  its telemetry, harvest and status topics only; the ingest and control users.
- `files`: the `passwords` and `acl` files (a device publishes to its own three topics;
  `%u` is the MQTT username, which is the device id); only the ingest user may read.

A device whose id is a name the platform keeps (the ingest user or client id...) is left
out with a warning, instead of failing the whole broker's configuration.
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from coffeetrace.broker_control import DynsecDevice, device_name_problem, dynsec_config
from coffeetrace.credentials import mosquitto_hash
from coffeetrace.errors import ConfigError
from coffeetrace.mqtt import parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.ingest", "brokerconfig.sql")

PASSWORD_FILE = "passwords"
ACL_FILE = "acl"
DYNSEC_FILE = "dynamic-security.json"


@dataclass(frozen=True)
class BrokerAuth:
    passwords: Path
    acl: Path
    devices: int
    ingest_user: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DynsecAuth:
    path: Path
    devices: int
    disabled: int
    ingest_user: str
    control_user: str
    warnings: list[str] = field(default_factory=list)


def ingest_credentials(settings: Settings) -> tuple[str, str]:
    """The ingest consumer's broker user and password. The user in mqtt_url wins (it is
    the one ingest connects with); the password comes from the setting, else from mqtt_url."""
    user, password = settings.mqtt_ingest_username, settings.mqtt_ingest_password
    if settings.mqtt_url:
        addr = parse_broker_url(settings.mqtt_url)
        user = addr.username or user
        password = password or addr.password or ""
    if not password:
        raise ConfigError(
            "the ingest consumer needs a broker password: set COFFEETRACE_MQTT_INGEST_PASSWORD "
            "(and use the same in COFFEETRACE_MQTT_URL=mqtt://coffeetrace-ingest:PASSWORD@host)",
            setting="COFFEETRACE_MQTT_INGEST_PASSWORD",
        )
    return user, password


def render_acl(topic_prefix: str, ingest_user: str) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"# Written by `coffeetrace broker-config` at {stamp}; regenerate, do not edit.\n"
        "# Every device publishes only to its own topics (%u = username = device id):\n"
        "# telemetry, harvest and status, including its last will. Nothing else, no reads.\n"
        f"pattern write {topic_prefix}/devices/%u/telemetry\n"
        f"pattern write {topic_prefix}/devices/%u/harvest\n"
        f"pattern write {topic_prefix}/devices/%u/status\n"
        "\n"
        "# The ingest consumer reads every device topic, directly or as a shared subscription.\n"
        f"user {ingest_user}\n"
        f"topic read {topic_prefix}/devices/+/+\n"
        f"topic read $share/+/{topic_prefix}/devices/+/+\n"
        "# for health checks (mosquitto_sub -t '$SYS/broker/uptime')\n"
        "topic read $SYS/broker/uptime\n"
    )


def _devices(
    conn: psycopg.Connection[Any], settings: Settings
) -> tuple[list[dict[str, Any]], list[str]]:
    """The registry's devices that may be broker identities, and a warning per one left out."""
    rows = conn.execute(SQL["device_credentials"]).fetchall()
    kept, warnings = [], []
    for r in rows:
        problem = device_name_problem(settings, r["id"])
        if problem:
            warnings.append(
                f"device {r['id']!r} left out of the broker: {problem}; "
                "re-register it under another id"
            )
        else:
            kept.append(r)
    return kept, warnings


def write_broker_auth(
    conn: psycopg.Connection[Any], settings: Settings, out_dir: Path
) -> BrokerAuth:
    """Write `passwords` and `acl` into `out_dir` (replaced atomically)."""
    user, password = ingest_credentials(settings)
    rows, warnings = _devices(conn, settings)
    rows = [r for r in rows if r["active"]]
    lines = [f"{user}:{mosquitto_hash(password)}"]
    lines += [f"{r['id']}:{r['credential_hash']}" for r in rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    passwords = out_dir / PASSWORD_FILE
    acl = out_dir / ACL_FILE
    _replace(passwords, "\n".join(lines) + "\n")
    _replace(acl, render_acl(settings.topic_prefix, user))
    return BrokerAuth(
        passwords=passwords, acl=acl, devices=len(rows), ingest_user=user, warnings=warnings
    )


def write_dynsec_config(
    conn: psycopg.Connection[Any], settings: Settings, out_dir: Path
) -> DynsecAuth:
    """Write `dynamic-security.json` into `out_dir` (replaced atomically), for a broker
    about to start: a running one keeps its own state and saves it over this file."""
    user, password = ingest_credentials(settings)
    if not settings.mqtt_control_password:
        raise ConfigError(
            "the dynamic security plugin needs a control user for the API: set "
            "COFFEETRACE_MQTT_CONTROL_PASSWORD",
            setting="COFFEETRACE_MQTT_CONTROL_PASSWORD",
        )
    rows, warnings = _devices(conn, settings)
    config = dynsec_config(
        settings.topic_prefix,
        ingest_user=user,
        ingest_hash=mosquitto_hash(password),
        control_user=settings.mqtt_control_username,
        control_hash=mosquitto_hash(settings.mqtt_control_password),
        devices=[DynsecDevice(r["id"], r["credential_hash"], r["active"]) for r in rows],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / DYNSEC_FILE
    _replace(path, json.dumps(config, indent=1) + "\n")
    # the plugin saves changes as a new file beside this one, then renames it
    _give_to_broker_group(out_dir)
    return DynsecAuth(
        path=path,
        devices=len(rows),
        disabled=sum(1 for r in rows if not r["active"]),
        ingest_user=user,
        control_user=settings.mqtt_control_username,
        warnings=warnings,
    )


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # Readable by the broker's own user, not by others.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    _give_to_broker_group(tmp)
    os.replace(tmp, path)


def _give_to_broker_group(path: Path) -> None:
    """As root, hand the file to the broker's user: Mosquitto reads it after dropping root
    (user `mosquitto` here, uid 1883 in the eclipse-mosquitto image)."""
    if os.geteuid() != 0:
        return

    try:
        entry = pwd.getpwnam("mosquitto")
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid = gid = 1883
    os.chown(path, uid, gid)
