"""The embedded broker keeps queued QoS 1 messages across a restart, even when its data
folder sits under a private (0700) parent, as a user's home does."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from coffeetrace.embedded import EmbeddedBroker, free_port
from coffeetrace.mqtt import new_client, parse_broker_url


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_queued_messages_survive_a_broker_restart(tmp_path: Path) -> None:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    broker = EmbeddedBroker(private / "data", free_port())
    broker.start()
    addr = parse_broker_url(broker.url)
    received: list[bytes] = []
    got_all = threading.Event()

    def subscriber() -> object:
        client = new_client(addr, "persistent-sub", clean_session=False)
        client.on_message = lambda c, u, m: (
            received.append(m.payload),
            len(received) >= 100 and got_all.set(),
        )
        client.connect(addr.host, addr.port)
        client.subscribe("restart/#", qos=1)
        client.loop_start()
        return client

    try:
        sub = subscriber()
        time.sleep(0.5)
        sub.disconnect()  # type: ignore[attr-defined]
        sub.loop_stop()  # type: ignore[attr-defined]
        pub = new_client(addr, "restart-pub")
        pub.connect(addr.host, addr.port)
        pub.loop_start()
        infos = [pub.publish("restart/x", str(i).encode(), qos=1) for i in range(100)]
        for info in infos:
            info.wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()

        broker.stop()  # graceful: Mosquitto saves its database
        assert (private / "data" / "mosquitto" / "mosquitto.db").exists()
        broker.start()
        sub = subscriber()
        assert got_all.wait(20), f"only {len(received)} of 100 queued messages came back"
        assert sorted(int(p) for p in received) == list(range(100))
        sub.disconnect()  # type: ignore[attr-defined]
        sub.loop_stop()  # type: ignore[attr-defined]
    finally:
        broker.stop()
