"""A second stack (`coffeetrace simulate` beside a running `coffeetrace up`) reuses the
embedded servers it finds running, leaves their files alone and does not stop them."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from coffeetrace.cli.runner import start_servers
from coffeetrace.embedded import EmbeddedBroker, free_port, port_answers
from coffeetrace.mqtt import check_broker
from coffeetrace.settings import get_settings

MARK = "# written by the first stack only\n"


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_second_stack_leaves_the_first_ones_servers_alone(tmp_path: Path) -> None:
    settings = get_settings(
        data_dir=tmp_path / "data",
        database_url="",
        mqtt_url="",
        embedded_pg_port=free_port(),
        embedded_mqtt_port=free_port(),
    )
    said: list[str] = []
    with ExitStack() as first:
        up = start_servers(settings, first, said.append)
        conf = settings.data_dir / "mosquitto" / "mosquitto.conf"
        with conf.open("a") as f:
            f.write(MARK)
        with ExitStack() as second:
            again = start_servers(settings, second, said.append)
            assert again.database_url == up.database_url and again.mqtt_url == up.mqtt_url
        # the second stack has exited: both servers still serve the first one
        with psycopg.connect(up.database_url, connect_timeout=5) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        check_broker(up.mqtt_url)
        assert conf.read_text().endswith(MARK)  # not rewritten
        assert any("already running" in line for line in said)
    # the first stack stops what it started
    assert not port_answers("127.0.0.1", settings.embedded_pg_port)
    assert not port_answers("127.0.0.1", settings.embedded_mqtt_port)


def test_a_reused_broker_is_not_stopped(tmp_path: Path) -> None:
    port = free_port()
    owner = EmbeddedBroker(tmp_path / "a", port, prefer_mosquitto=False)
    owner.start()
    try:
        guest = EmbeddedBroker(tmp_path / "b", port)
        guest.start()
        assert guest.reused and not guest.started_here
        guest.stop()
        check_broker(owner.url)
        assert not (tmp_path / "b" / "mosquitto").exists()
    finally:
        owner.stop()
