"""The mosquitto_pub examples of docs/mqtt.md, run as written (bash) against a real broker:
the accepted ones reach the store, each refused one is dead-lettered with the reason its
comment names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from coffeetrace.ingest.service import IngestService
from coffeetrace.mqtt import parse_broker_url
from coffeetrace.settings import Settings
from tests.factories import World
from tests.ingest.helpers import scalar, wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def _commands() -> tuple[list[str], list[tuple[str, str]]]:
    """(accepted commands, [(expected reason code, command)]) from the doc."""
    text = DOC.read_text()
    good_part, bad_part = text.split("Refused, each into", 1)
    good = [line for line in good_part.splitlines() if line.startswith("mosquitto_pub ")]
    bad: list[tuple[str, str]] = []
    expected = None
    for line in bad_part.splitlines():
        m = re.match(r"# -> (\w+)", line)
        if m:
            expected = m.group(1)
        elif line.startswith("mosquitto_pub ") and expected:
            bad.append((expected, line))
            expected = None
    return good, bad


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub not on PATH")
def test_doc_examples_run_as_written(
    ingest_settings: Settings, world: World, conn: psycopg.Connection
) -> None:
    s = ingest_settings.model_copy(update={"topic_prefix": "coffeetrace/v1"})
    good, bad = _commands()
    assert len(good) == 5 and len(bad) == 9, (len(good), len(bad))
    addr = parse_broker_url(s.mqtt_url)
    scale = world.devices["scale"].username
    env = {
        **os.environ,
        "MQTT_HOST": addr.host,
        "MQTT_PORT": str(addr.port),
        "PREFIX": s.topic_prefix,
        "DEV": world.devices["soil"].username,
        "SCALE": scale,
        "TREE": world.trees[0]["tag_code"],
        "DEV_PASSWORD": "x",
        "SCALE_PASSWORD": "x",
    }
    svc = IngestService(s)
    svc.start()
    db = s.database_url
    try:
        for line in good + [cmd for _, cmd in bad]:
            subprocess.run(["bash", "-c", line], env=env, check=True, timeout=20)
        assert wait_until(lambda: scalar(db, "select count(*) from dead_letters") >= len(bad))
        assert wait_until(lambda: scalar(db, "select count(*) from device_status") == 1)
    finally:
        svc.stop()
    assert scalar(db, "select count(*) from ingest_messages") == 4  # 1042, 1043, 1044, h-...
    assert scalar(db, "select count(*) from sensor_readings") == 5
    assert (
        scalar(
            db, "select count(*) from harvest_events where tree_id = %s", (world.trees[0]["id"],)
        )
        == 1
    )
    with psycopg.connect(db) as c:
        reasons = [
            r[0].split(":")[0]
            for r in c.execute("select reason from dead_letters order by id").fetchall()
        ]
    assert sorted(reasons) == sorted(code for code, _ in bad)
