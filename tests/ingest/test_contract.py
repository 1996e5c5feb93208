"""The device contract of docs/mqtt.md, end to end: real broker, real consumer, real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg

from coffeetrace.credentials import new_device_secret
from coffeetrace.ingest.service import IngestService
from coffeetrace.ingest.topics import device_topic
from coffeetrace.settings import Settings
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import World
from tests.ingest.helpers import now_ms, publish_all, scalar, wait_until


def rfc3339(delta_s: float = 0) -> str:
    """Now (plus `delta_s`) in RFC 3339 with the Vietnam offset, as a device would send."""
    return (
        (datetime.now(UTC) + timedelta(seconds=delta_s))
        .astimezone(timezone(timedelta(hours=7)))
        .isoformat(timespec="seconds")
    )


def topic(s: Settings, device: str, kind: str) -> str:
    return device_topic(s.topic_prefix, device, kind)


def test_telemetry_harvest_and_status_are_stored(
    ingest_settings: Settings, world: World, service: IngestService
) -> None:
    s, db = ingest_settings, ingest_settings.database_url
    soil = world.devices["soil"].username
    scale = world.devices["scale"].username
    t0 = now_ms()
    publish_all(
        s.mqtt_url,
        [
            (
                topic(s, soil, "telemetry"),
                {
                    "seq": 1,
                    "ts": rfc3339(),
                    "values": {"soilMoistureVwc": 31.2, "soilTemperature": 24.1},
                },
            ),
            # an offline buffer flushed as an array, epoch milliseconds, one tree-bound set
            (
                topic(s, soil, "telemetry"),
                [
                    {"seq": 2, "ts": t0 - 200_000, "values": {"soilMoistureVwc": 30.9}},
                    {
                        "seq": 3,
                        "ts": t0 - 100_000,
                        "values": {"soilMoistureVwc": 30.5},
                        "tree": "T-00001",
                    },
                ],
            ),
            (
                topic(s, scale, "harvest"),
                {
                    "seq": 7,
                    "ts": rfc3339(),
                    "tree": "T-00002",
                    "cherry_kg": 4.2,
                    "ripeness_pct": 92,
                    "picker": "PK-0012",
                },
            ),
            (topic(s, scale, "status"), {"online": True, "battery_pct": 81, "firmware": "1.2.0"}),
        ],
    )
    assert wait_until(lambda: scalar(db, "select count(*) from ingest_messages") == 4)
    assert wait_until(lambda: scalar(db, "select count(*) from device_status") == 1)
    with psycopg.connect(db) as conn:
        readings = conn.execute(
            "select metric, value, plot_id, tree_id from sensor_readings order by time, metric"
        ).fetchall()
        harvest = conn.execute(
            "select tree_id, plot_id, farm_id, cherry_kg, ripeness_pct, picker_code "
            "from harvest_events"
        ).fetchall()
        status = conn.execute("select online, battery_pct, firmware from device_status").fetchone()
        dead = scalar(db, "select count(*) from dead_letters")
    plot, trees = world.plot["id"], world.trees
    assert readings == [
        ("soilMoistureVwc", 30.9, plot, None),
        ("soilMoistureVwc", 30.5, plot, trees[1]["id"]),
        ("soilMoistureVwc", 31.2, plot, None),
        ("soilTemperature", 24.1, plot, None),
    ]
    assert [(h[0], h[1], h[2], float(h[3]), float(h[4]), h[5]) for h in harvest] == [
        (trees[2]["id"], plot, world.farm["id"], 4.2, 92.0, "PK-0012")
    ]
    assert status == (True, 81.0, "1.2.0")
    assert dead == 0
    m = service.metrics
    assert m.readings._value.get() == 5
    assert m.stored.labels("telemetry")._value.get() == 3


def test_duplicates_add_nothing(
    ingest_settings: Settings, world: World, service: IngestService
) -> None:
    s, db = ingest_settings, ingest_settings.database_url
    soil = world.devices["soil"].username
    t = now_ms()
    one = {"seq": 10, "ts": t, "values": {"temperature": 22.0, "relativeHumidity": 80.0}}
    msg_id = {"msg_id": "a1b2", "ts": t, "values": {"temperature": 23.0}}
    publish_all(
        s.mqtt_url,
        [
            (topic(s, soil, "telemetry"), one),
            (topic(s, soil, "telemetry"), [one, msg_id, msg_id]),  # repeats inside an array
            (topic(s, soil, "telemetry"), one),
            (topic(s, soil, "telemetry"), msg_id),
        ],
    )
    assert wait_until(lambda: service.metrics.received._value.get() == 4)
    assert wait_until(lambda: service.committed_batches > 0 and service.pending() == 0)
    assert scalar(db, "select count(*) from ingest_messages") == 2
    assert scalar(db, "select count(*) from sensor_readings") == 3
    assert service.metrics.duplicates._value.get() == 4


def _bad_variants(world: World, other: str) -> list[tuple[str, str, object, str]]:
    """(device, kind, payload, expected reason code)."""
    soil = world.devices["soil"].username
    scale = world.devices["scale"].username
    t = now_ms()
    return [
        (soil, "telemetry", b"{not json", "invalid_json"),
        (soil, "telemetry", {"ts": t, "values": {"temperature": 20}}, "invalid"),
        (soil, "telemetry", {"seq": 1, "ts": t, "values": {"temperature": 95}}, "invalid"),
        (soil, "telemetry", {"seq": 2, "ts": t, "values": {"soilMoistureVwc": -1}}, "invalid"),
        (soil, "telemetry", {"seq": 3, "ts": t, "values": {"nitrogen": 3}}, "invalid"),
        (
            soil,
            "telemetry",
            {"seq": 4, "ts": "yesterday", "values": {"temperature": 20}},
            "invalid",
        ),
        (
            soil,
            "telemetry",
            {"seq": 5, "ts": 1780000000, "values": {"temperature": 20}},
            "invalid",
        ),  # seconds, not milliseconds
        (
            soil,
            "telemetry",
            {"seq": 6, "ts": "2026-06-01T08:10:00", "values": {"temperature": 20}},
            "invalid",
        ),  # no offset
        (
            soil,
            "telemetry",
            {"seq": 7, "ts": t + 3_600_000, "values": {"temperature": 20}},
            "future_timestamp",
        ),
        (
            soil,
            "telemetry",
            {"seq": 8, "ts": t - 86_400_000, "values": {"temperature": 20}},
            "before_registration",
        ),
        (
            soil,
            "telemetry",
            {"seq": 9, "ts": t, "values": {"temperature": 20}, "tree": "T-99999"},
            "unknown_tree",
        ),
        (
            soil,
            "telemetry",
            {"seq": 10, "ts": t, "values": {"temperature": 20}, "tree": "T-OTHER"},
            "tree_not_bound",
        ),
        (scale, "harvest", {"seq": 11, "ts": t, "tree": "T-00000", "cherry_kg": -1}, "invalid"),
        (scale, "harvest", {"seq": 12, "ts": t, "cherry_kg": 3}, "invalid"),
        (
            scale,
            "harvest",
            {"seq": 13, "ts": t, "tree": "T-00000", "cherry_kg": 3, "ripeness_pct": 140},
            "invalid",
        ),
        (
            "ghost-device-01",
            "telemetry",
            {"seq": 14, "ts": t, "values": {"temperature": 20}},
            "unknown_device",
        ),
        (soil, "telemetry", b"x" * 300_000, "payload_too_large"),
        (soil, "telemetry", b"[]", "invalid"),
        (soil, "weather", {"seq": 15, "ts": t}, "bad_topic"),
        (
            other,
            "telemetry",
            {"seq": 16, "ts": t, "values": {"temperature": 20}},
            "inactive_device",
        ),
    ]


def test_each_bad_message_is_dead_lettered_and_good_ones_pass(
    ingest_settings: Settings, world: World, conn: psycopg.Connection, keys: KeyRing
) -> None:
    s, db = ingest_settings, ingest_settings.database_url
    coop = world.coop["id"]
    other_plot = registry.create_plot(
        conn,
        coop,
        world.farm["id"],
        "P-2",
        {"type": "Point", "coordinates": [108.2, 12.7]},
        0.5,
        keys=keys,
    )
    registry.create_tree(conn, coop, other_plot["id"], "T-OTHER", keys=keys)
    retired = registry.register_device(
        conn, coop, "soil_node", plot_id=world.plot["id"], secret=new_device_secret()
    )
    conn.execute("update devices set active = false where id = %s", (retired.username,))
    conn.commit()
    variants = _bad_variants(world, retired.username)
    soil = world.devices["soil"].username
    good = [
        (
            topic(s, soil, "telemetry"),
            {"seq": 100 + i, "ts": now_ms(), "values": {"temperature": 21.5}},
        )
        for i in range(len(variants))
    ]
    items: list[tuple[str, object]] = []
    for (device, kind, payload, _), ok in zip(variants, good, strict=True):
        items += [(topic(s, device, kind), payload), ok]  # good and bad interleaved
    # one array with a bad set between two good ones: only the bad set is rejected
    items.append(
        (
            topic(s, soil, "telemetry"),
            [
                {"seq": 200, "ts": now_ms(), "values": {"windSpeed": 2.5}},
                {"seq": 201, "ts": now_ms(), "values": {"windSpeed": 500}},
                {"seq": 202, "ts": now_ms(), "values": {"windSpeed": 3.5}},
            ],
        )
    )
    svc = IngestService(s)
    svc.start()
    try:
        publish_all(s.mqtt_url, items)
        expected_dead = len(variants) + 1
        assert wait_until(lambda: scalar(db, "select count(*) from dead_letters") >= expected_dead)
    finally:
        svc.stop()
    with psycopg.connect(db) as c:
        dead = c.execute(
            "select topic, device_id, msg_id, reason, payload, payload_size "
            "from dead_letters order by id"
        ).fetchall()
    assert len(dead) == expected_dead
    codes = sorted(r[3].split(":")[0] for r in dead)
    assert codes == sorted([v[3] for v in variants] + ["invalid"])
    for row in dead:
        assert row[3].split(":", 1)[1].strip(), f"reason without detail: {row[3]}"
        assert len(row[4]) <= s.ingest_dead_letter_payload_chars
    too_large = next(r for r in dead if r[3].startswith("payload_too_large"))
    assert too_large[5] == 300_000 and too_large[1] == soil
    assert next(r for r in dead if "windSpeed=500" in r[3])[2] == "201"
    assert scalar(db, "select count(*) from sensor_readings") == len(good) + 2
    assert svc.metrics.dead_letters.labels("before_registration")._value.get() == 1


def test_works_on_the_in_process_fallback_broker(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    """`coffeetrace up` falls back to amqtt (MQTT 3.1.1 only) where Mosquitto is missing."""
    from coffeetrace.embedded import EmbeddedBroker, free_port

    broker = EmbeddedBroker(tmp_path / "amqtt", free_port(), prefer_mosquitto=False)
    broker.start()
    s = settings.model_copy(update={"mqtt_url": broker.url})
    svc = IngestService(s)
    try:
        svc.start()
        soil = world.devices["soil"].username
        publish_all(
            s.mqtt_url,
            [
                (
                    topic(s, soil, "telemetry"),
                    {"seq": i, "ts": now_ms(), "values": {"temperature": 20.0}},
                )
                for i in range(20)
            ],
        )
        assert wait_until(
            lambda: scalar(s.database_url, "select count(*) from sensor_readings") == 20
        )
    finally:
        svc.stop()
        broker.stop()
