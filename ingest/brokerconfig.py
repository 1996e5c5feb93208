"""Mosquitto password and ACL files from the registry (`coffeetrace broker-config`).

Device hashes are already stored in Mosquitto's `$7$` format, so the password file is
written without knowing any device secret. Devices may publish only under their own topic
level (`%u` is the MQTT username, which is the device id); only the ingest user may read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from coffeetrace.credentials import mosquitto_hash
from coffeetrace.errors import ConfigError
from coffeetrace.mqtt import parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

PASSWORD_FILE = "passwords"
ACL_FILE = "acl"


@dataclass(frozen=True)
class BrokerAuth:
    passwords: Path
    acl: Path
    devices: int
    ingest_user: str


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
            setting="COFFEETRACE_MQTT_INGEST_PASSWORD")
    return user, password


def render_acl(topic_prefix: str, ingest_user: str) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"# Written by `coffeetrace broker-config` at {stamp}; regenerate, do not edit.\n"
        "# Every device publishes only under its own topic level (%u = username = device id):\n"
        "# telemetry, harvest and status, including its last will.\n"
        f"pattern write {topic_prefix}/devices/%u/#\n"
        "\n"
        "# The ingest consumer reads every device topic, directly or as a shared subscription.\n"
        f"user {ingest_user}\n"
        f"topic read {topic_prefix}/devices/+/+\n"
        f"topic read $share/+/{topic_prefix}/devices/+/+\n"
        "# for health checks (mosquitto_sub -t '$SYS/broker/uptime')\n"
        "topic read $SYS/broker/uptime\n"
    )


def write_broker_auth(conn: psycopg.Connection[Any], settings: Settings,
                      out_dir: Path) -> BrokerAuth:
    """Write `passwords` and `acl` into `out_dir` (replaced atomically)."""
    user, password = ingest_credentials(settings)
    rows = conn.execute(load_queries("coffeetrace.ingest")["active_device_credentials"]).fetchall()
    if any(r["id"] == user for r in rows):
        raise ConfigError(f"a device is named like the ingest user {user!r}; "
                          "set COFFEETRACE_MQTT_INGEST_USERNAME to another name",
                          setting="COFFEETRACE_MQTT_INGEST_USERNAME")
    lines = [f"{user}:{mosquitto_hash(password)}"]
    lines += [f"{r['id']}:{r['credential_hash']}" for r in rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    passwords = out_dir / PASSWORD_FILE
    acl = out_dir / ACL_FILE
    _replace(passwords, "\n".join(lines) + "\n")
    _replace(acl, render_acl(settings.topic_prefix, user))
    return BrokerAuth(passwords=passwords, acl=acl, devices=len(rows), ingest_user=user)


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
    import pwd

    try:
        entry = pwd.getpwnam("mosquitto")
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid = gid = 1883
    os.chown(path, uid, gid)
