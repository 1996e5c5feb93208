"""How the consumer cuts the received messages into database transactions."""

from __future__ import annotations

import json
import uuid

from coffeetrace.ingest.service import IngestService, _batch_length
from coffeetrace.ingest.topics import Incoming, device_topic
from coffeetrace.settings import Settings
from tests.factories import World
from tests.ingest.helpers import now_ms, publish_all, scalar, wait_until


def _inbox(*sizes: int) -> list[Incoming]:
    return [Incoming("t", b"x" * n, mid, 1, 0, 0.0) for mid, n in enumerate(sizes)]


def test_batch_length_by_count_and_by_payload_bytes() -> None:
    assert _batch_length(_inbox(10, 10, 10), 2, 1000) == (2, True)
    assert _batch_length(_inbox(10, 10, 10), 5, 1000) == (3, False)  # may still grow
    assert _batch_length(_inbox(400, 400, 400, 400), 100, 1000) == (2, True)
    assert _batch_length(_inbox(5000, 10), 100, 1000) == (1, True)  # a large one goes alone
    assert _batch_length(_inbox(10, 5000), 100, 1000) == (1, True)


def _offline_buffer(seq: int, sets: int) -> list[dict[str, object]]:
    t = now_ms()
    return [
        {
            "seq": seq * sets + i,
            "ts": t - 60_000 * (sets - i),
            "values": {"soilMoistureVwc": 31.5, "soilTemperature": 24.25},
        }
        for i in range(sets)
    ]


def _drain_queued(settings: Settings, world: World, messages: int, **update: object) -> list[int]:
    """Queue `messages` offline buffers for a persistent session while no consumer runs,
    then drain them; the number of messages of each committed batch."""
    s = settings.model_copy(update={"mqtt_client_id": f"ingest-{uuid.uuid4().hex[:8]}", **update})
    first = IngestService(s)
    first.start()  # creates the persistent session, then goes offline
    first.stop()
    soil = world.devices["soil"].username
    topic = device_topic(s.topic_prefix, soil, "telemetry")
    publish_all(s.mqtt_url, [(topic, json.dumps(_offline_buffer(n, 10))) for n in range(messages)])
    sizes: list[int] = []
    service = IngestService(s, on_commit=lambda c: sizes.append(c.messages))
    service.start()
    try:
        assert wait_until(lambda: sum(sizes) >= messages), sizes
    finally:
        service.stop()
    assert sum(sizes) == messages
    assert scalar(s.database_url, "select count(*) from sensor_readings") == scalar(
        s.database_url, "select coalesce(sum(readings), 0) from ingest_messages"
    )
    return sizes


def test_large_messages_are_cut_into_bounded_transactions(
    ingest_settings: Settings, world: World
) -> None:
    one = len(json.dumps(_offline_buffer(0, 10)))
    sizes = _drain_queued(ingest_settings, world, 30, ingest_batch_bytes=3 * one)
    assert max(sizes) <= 3 and len(sizes) >= 10, sizes


def test_without_the_byte_bound_a_burst_shares_transactions(
    ingest_settings: Settings, world: World
) -> None:
    """The control of the test above: the same burst, default bound, fewer and larger
    transactions (so the bound is what made them small)."""
    sizes = _drain_queued(ingest_settings, world, 30)
    assert max(sizes) > 3, sizes
