"""The store's ledger claim against the real database: the optimistic COPY of a batch's keys,
its fallback when a key was seen before, and two consumers claiming the same keys."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.ingest.devices import DeviceCache
from coffeetrace.ingest.store import Written, write_batch
from coffeetrace.ingest.topics import Incoming, device_topic
from coffeetrace.ingest.validate import Prepared, Preparer
from coffeetrace.trace.keys import KeyRing
from tests.factories import World
from tests.ingest.helpers import now_ms, scalar

PREFIX = "t/coffeetrace/v1"


def _batch(conn: psycopg.Connection[Any], world: World, seqs: list[int]) -> Prepared:
    """One message per seq, each a reading set of two readings, from the world's soil node."""
    device = world.devices["soil"].username
    topic = device_topic(PREFIX, device, "telemetry")
    t = now_ms()
    messages = [
        Incoming(
            topic,
            (
                f'{{"seq": {seq}, "ts": {t - seq}, "values": '
                f'{{"temperature": 21.5, "relativeHumidity": 80}}}}'
            ).encode(),
            mid,
            1,
            0,
            time.time(),
        )
        for mid, seq in enumerate(seqs, 1)
    ]
    preparer = Preparer(PREFIX, DeviceCache(), max_payload_bytes=65536, clock_skew_s=300)
    prepared = preparer.prepare(conn, messages)
    assert not prepared.rejects, prepared.rejects
    return prepared


def _stored(db: str) -> tuple[int, int]:
    return (
        scalar(db, "select count(*) from ingest_messages"),
        scalar(db, "select count(*) from sensor_readings"),
    )


@pytest.fixture
def autocommit(db_url: str, world: World) -> Any:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.mark.parametrize("expect_duplicates", [False, True])
def test_keys_seen_before_are_dropped_either_way(
    db_url: str, world: World, autocommit: Any, expect_duplicates: bool, keys: KeyRing
) -> None:
    first = write_batch(autocommit, _batch(autocommit, world, [1, 2, 3]), keys=keys)
    assert (first.sets, first.readings, first.known_keys) == (3, 6, 0)
    # two sets seen before among two new ones: the COPY of the keys is refused by the
    # unique key (or skipped when duplicates are expected) and the batch claimed key by key
    second = write_batch(
        autocommit,
        _batch(autocommit, world, [2, 4, 3, 5]),
        keys=keys,
        expect_duplicates=expect_duplicates,
    )
    assert (second.sets, second.readings, second.known_keys, second.duplicates) == (2, 4, 2, 2)
    assert _stored(db_url) == (5, 10)
    again = write_batch(autocommit, _batch(autocommit, world, [1, 2, 3, 4, 5]), keys=keys)
    assert (again.sets, again.readings, again.known_keys) == (0, 0, 5)
    assert _stored(db_url) == (5, 10)


def test_a_batch_waits_for_another_consumers_uncommitted_key(
    db_url: str, world: World, autocommit: Any, keys: KeyRing
) -> None:
    """Two ingest processes on a shared subscription may hold the same redelivered set: the
    second waits for the first's transaction and, once it commits, stores only the rest."""
    holder = psycopg.connect(db_url)
    try:
        # the first consumer's transaction: one set claimed and stored, not yet committed
        with holder.cursor() as cur:
            cur.execute(
                "insert into ingest_messages (device_id, msg_id, kind, readings) "
                "values (%s, '7', 'telemetry', 2)",
                (world.devices["soil"].username,),
            )
            cur.execute(
                "insert into sensor_readings (time, device_id, plot_id, metric, value) "
                "select now(), %s, %s, m, 1 from unnest(array['temperature', "
                "'relativeHumidity']) m",
                (world.devices["soil"].username, world.plot["id"]),
            )
        result: list[Written] = []
        second = threading.Thread(
            target=lambda: result.append(
                write_batch(autocommit, _batch(autocommit, world, [6, 7, 8]), keys=keys)
            )
        )
        second.start()
        deadline = time.monotonic() + 20
        while not _waits_on_lock(db_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waits_on_lock(db_url), "the second claim did not wait for the uncommitted key"
        assert not result
        holder.commit()
        second.join(20)
        assert result and (result[0].sets, result[0].known_keys) == (2, 1)
    finally:
        holder.close()
    assert _stored(db_url) == (3, 6)


def _waits_on_lock(db: str) -> bool:
    return bool(
        scalar(
            db,
            "select count(*) from pg_stat_activity "
            "where datname = current_database() and wait_event_type = 'Lock'",
        )
    )
