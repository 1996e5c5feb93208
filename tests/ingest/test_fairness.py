"""Per-device fairness: token buckets, the per-message item limit and the hourly cap on
dead-letter rows, on the real broker and database; and the buckets themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coffeetrace.credentials import new_device_secret
from coffeetrace.ingest.limits import DeviceLimiter, Limits, for_replay
from coffeetrace.ingest.retention import prune_dead_letters
from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from coffeetrace.trace import registry
from tests.factories import World
from tests.ingest.helpers import Publisher, now_ms, scalar, wait_until


def test_bucket_admits_its_burst_then_its_rate() -> None:
    limiter = DeviceLimiter(Limits(msgs_per_s=2, msgs_burst=5, sets_per_s=0, sets_burst=1))
    admitted = [limiter.admit_message("d", 100.0, 1) is None for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    assert limiter.admit_message("d", 101.0, 1) is None  # one second: two more tokens
    assert limiter.admit_message("d", 101.0, 1) is None
    reason = limiter.admit_message("d", 101.0, 1)
    assert reason is not None and reason.startswith("rate_limited: device over 2 messages/s")
    assert limiter.admit_message("other", 101.0, 1) is None  # buckets are per device
    # a new broker connection delivers the backlog queued meanwhile: buckets start full
    assert all(limiter.admit_message("d", 101.0, 2) is None for _ in range(5))


def test_sets_bucket_counts_the_sets_of_each_message() -> None:
    limiter = DeviceLimiter(Limits(msgs_per_s=0, msgs_burst=1, sets_per_s=10, sets_burst=100))
    assert limiter.admit_sets("d", 60, 0.0, 0) is None
    assert limiter.admit_sets("d", 60, 0.0, 0) is not None  # 40 left
    assert limiter.admit_sets("d", 60, 2.0, 0) is None  # 40 + 2 s x 10


def test_replays_lift_the_rate_limits_unless_set_explicitly() -> None:
    assert for_replay(Settings()).ingest_device_msgs_per_s == 0
    assert for_replay(Settings(ingest_device_msgs_per_s=3)).ingest_device_msgs_per_s == 3
    defaults = Settings()
    assert (defaults.ingest_device_msgs_per_s, defaults.ingest_device_sets_per_s) == (10, 200)


def _limited(s: Settings, **limits: float) -> Settings:
    return s.model_copy(
        update={
            "ingest_device_msgs_per_s": 2.0,
            "ingest_device_msgs_burst": 20,
            "ingest_device_sets_per_s": 0.0,
            "ingest_dead_letters_per_device_hour": 15,
            **limits,
        }
    )


@pytest.mark.slow
def test_a_flooding_device_is_limited_and_the_others_are_not(
    ingest_settings: Settings, world: World, conn: psycopg.Connection
) -> None:
    s = _limited(ingest_settings)
    flood, flood_n = world.devices["soil"].username, 400
    calm = registry.register_device(
        conn, world.coop["id"], "soil_node", plot_id=world.plot["id"], secret=new_device_secret()
    ).username
    conn.commit()
    svc = IngestService(s)
    svc.start()
    pub = Publisher(s.mqtt_url)
    try:
        assert pub.connected.wait(10)
        for seq in range(flood_n):
            pub.publish(
                f"{s.topic_prefix}/devices/{flood}/telemetry",
                {"seq": seq, "ts": now_ms(), "values": {"temperature": 20}},
            )
            if seq % 40 == 0:  # the calm device: one message now and then
                pub.publish(
                    f"{s.topic_prefix}/devices/{calm}/telemetry",
                    {"seq": seq, "ts": now_ms(), "values": {"temperature": 21}},
                )
        assert pub.wait_all_acked(30)

        def counted() -> int:
            return int(
                scalar(
                    s.database_url,
                    "select coalesce(sum(received), 0) from dead_letter_hours where device_id = %s",
                    (flood,),
                )
            )

        def stored_flood() -> int:
            return int(
                scalar(
                    s.database_url,
                    "select count(*) from ingest_messages where device_id = %s",
                    (flood,),
                )
            )

        assert wait_until(lambda: stored_flood() + counted() == flood_n, timeout=30)
    finally:
        pub.close()
        svc.stop()
    with psycopg.connect(s.database_url) as c:
        calm_stored = c.execute(
            "select count(*) from sensor_readings where device_id = %s", (calm,)
        ).fetchone()
        rows = c.execute(
            "select reason from dead_letters where device_id = %s", (flood,)
        ).fetchall()
        hour = c.execute(
            "select received, kept, last_reason from dead_letter_hours where device_id = %s",
            (flood,),
        ).fetchone()
    assert calm_stored == (10,)  # every message of the calm device
    assert 20 <= stored_flood() < 40  # its burst, and the rate over a few seconds
    assert len(rows) == 15  # the cap: beyond it, only counted
    assert all(r[0].startswith("rate_limited: device over 2 messages/s") for r in rows)
    assert hour is not None and hour[0] == flood_n - stored_flood() and hour[1] == 15
    assert hour[2] == "rate_limited"
    dropped = svc.metrics.dead_letters_dropped.labels("rate_limited")._value.get()
    assert dropped == hour[0] - 15


@pytest.mark.slow
def test_junk_items_of_one_message_cost_a_few_rows(ingest_settings: Settings, world: World) -> None:
    s = ingest_settings
    soil = world.devices["soil"].username
    junk = [{"seq": i, "ts": now_ms(), "values": {"temperature": 500}} for i in range(50)]
    svc = IngestService(s)
    svc.start()
    pub = Publisher(s.mqtt_url)
    try:
        assert pub.connected.wait(10)
        pub.publish(f"{s.topic_prefix}/devices/{soil}/telemetry", junk)
        pub.publish(f"{s.topic_prefix}/devices/{soil}/telemetry", [{}] * 10_000)
        assert pub.wait_all_acked(30)
        assert wait_until(
            lambda: (
                scalar(s.database_url, "select coalesce(sum(received), 0) from dead_letter_hours")
                == 12
            )
        )
    finally:
        pub.close()
        svc.stop()
    with psycopg.connect(s.database_url) as c:
        reasons = [r[0] for r in c.execute("select reason from dead_letters order by id")]
    # ten rows with the item, one summary of the other forty, one for the 10,000 {}
    assert len(reasons) == 12
    assert sum(r.startswith("invalid: values: temperature=500") for r in reasons) == 10
    assert sum("more than 10 items of this message rejected" in r for r in reasons) == 1
    assert (
        sum(
            r.startswith("too_many_sets: an array needs 1..1000 items (got 10000)") for r in reasons
        )
        == 1
    )


def test_dead_letters_are_pruned_after_their_window(
    conn: psycopg.Connection, settings: Settings
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for age in (1, 29, 31, 90):
        at = now - timedelta(days=age)
        conn.execute(
            "insert into dead_letters (received_at, topic, device_id, reason, payload,"
            " payload_size) values (%s, 't', 'd', 'invalid: x', '{}', 2)",
            (at,),
        )
        conn.execute("insert into dead_letter_hours values ('d', %s, 1, 1, 1, 'invalid')", (at,))
    conn.commit()
    window = settings.model_copy(update={"ingest_dead_letter_retention_days": 30})
    assert prune_dead_letters(window, now=now, batch=1) == 2
    assert conn.execute("select count(*) from dead_letters").fetchone()["count"] == 2
    assert conn.execute("select count(*) from dead_letter_hours").fetchone()["count"] == 2
    keep = settings.model_copy(update={"ingest_dead_letter_retention_days": 0})
    assert prune_dead_letters(keep, now=now + timedelta(days=999)) == 0


def test_the_registry_cache_stays_bounded_by_random_tags(
    conn: psycopg.Connection, world: World
) -> None:
    from coffeetrace.ingest.devices import DeviceCache

    cache = DeviceCache(max_entries=50)
    coop = world.coop["id"]
    for round_ in range(5):  # a device naming 40 made-up trees a batch, and one real one
        cache.load_trees(
            conn, [(coop, f"FAKE-{round_}-{i}") for i in range(40)] + [(coop, "T-00000")]
        )
        assert len(cache._trees) <= 50
        assert cache.tree(coop, "T-00000") is not None  # the batch's own tags still answer
