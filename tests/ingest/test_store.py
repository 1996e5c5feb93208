"""The store's ledger claim against the real database: the optimistic COPY of a batch's keys,
its fallback when a key was seen before, and two consumers claiming the same keys."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.ingest.devices import DeviceCache
from coffeetrace.ingest.store import Written, precompute_evidence, write_batch
from coffeetrace.ingest.topics import Incoming, device_topic
from coffeetrace.ingest.validate import Prepared, Preparer
from coffeetrace.trace.batches import verify_batch
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
                "insert into ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings)"
                " values (%s, 7, 7, 'telemetry', array[2])",
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


def _sets_message(
    conn: psycopg.Connection[Any], world: World, sets: list[dict[str, Any]]
) -> Prepared:
    """One message holding the given reading sets (an offline buffer), from the soil node."""
    device = world.devices["soil"].username
    t = now_ms()
    body = [{"ts": t - 1000 * i, "values": {"temperature": 21.5}, **s} for i, s in enumerate(sets)]
    message = Incoming(
        device_topic(PREFIX, device, "telemetry"), json.dumps(body).encode(), 1, 1, 0, time.time()
    )
    preparer = Preparer(PREFIX, DeviceCache(), max_payload_bytes=65536, clock_skew_s=300)
    prepared = preparer.prepare(conn, [message])
    assert not prepared.rejects, prepared.rejects
    return prepared


def _ranges(db: str) -> list[tuple[int, int]]:
    with psycopg.connect(db) as c:
        rows = c.execute(
            "select first_seq, last_seq from ingest_seq_ranges order by first_seq"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_consecutive_seqs_are_one_ledger_row_and_a_resend_is_decided_per_set(
    db_url: str, world: World, autocommit: Any, keys: KeyRing
) -> None:
    # a buffer of sets 1..10 (and messages 11, 12 of the same batch) is one run: one row
    first = write_batch(autocommit, _batch(autocommit, world, [3, 1, 2, *range(4, 13)]), keys=keys)
    assert first.sets == 12
    assert _ranges(db_url) == [(1, 12)]
    # a later buffer overlapping the run's end, with a gap: only 13..15 and 20 are new
    again = write_batch(
        autocommit, _batch(autocommit, world, [10, 11, 12, 13, 14, 15, 20]), keys=keys
    )
    assert (again.sets, again.known_keys) == (4, 3)
    assert _stored(db_url) == (16, 32)
    assert _ranges(db_url) == [(1, 12), (13, 13), (14, 14), (15, 15), (20, 20)]
    # the view lists one row per set with its readings, as the ledger table did
    with psycopg.connect(db_url) as c:
        view = c.execute(
            "select msg_id, readings from ingest_messages order by msg_id::bigint"
        ).fetchall()
    assert [int(m) for m, _ in view] == [*range(1, 16), 20]
    assert {n for _, n in view} == {2}


def test_text_keys_and_seq_keys_share_one_key_space(
    db_url: str, world: World, autocommit: Any, keys: KeyRing
) -> None:
    """A key is a string: msg_id "17" is seq 17, "017" and "h-1" are keys of their own."""
    first = write_batch(
        autocommit,
        _sets_message(autocommit, world, [{"seq": 17}, {"msg_id": "017"}, {"msg_id": "h-1"}]),
        keys=keys,
    )
    assert first.sets == 3
    assert _ranges(db_url) == [(17, 17)]
    again = write_batch(
        autocommit,
        _sets_message(
            autocommit,
            world,
            [
                {"msg_id": "17"},
                {"seq": 18},
                {"msg_id": "017"},
                {"msg_id": "h-1"},
                {"msg_id": "h-2"},
            ],
        ),
        keys=keys,
    )
    assert (again.sets, again.known_keys) == (2, 3)  # 18 and h-2
    with psycopg.connect(db_url) as c:
        texts = c.execute("select msg_id from ingest_text_keys order by msg_id").fetchall()
    assert [r[0] for r in texts] == ["017", "h-1", "h-2"]
    assert _stored(db_url) == (5, 5)


def test_the_largest_seq_is_a_text_key(
    db_url: str, world: World, autocommit: Any, keys: KeyRing
) -> None:
    """seq 2^63 - 1 is valid, but its range [n, n + 1) has no bigint bound: a text key."""
    top = 2**63 - 1
    written = write_batch(
        autocommit, _sets_message(autocommit, world, [{"seq": top - 1}, {"seq": top}]), keys=keys
    )
    assert written.sets == 2
    assert _ranges(db_url) == [(top - 1, top - 1)]
    again = write_batch(
        autocommit, _sets_message(autocommit, world, [{"seq": top}, {"seq": top - 2}]), keys=keys
    )
    assert (again.sets, again.known_keys) == (1, 1)
    assert _stored(db_url) == (3, 3)


def test_evidence_computed_ahead_is_used_only_when_every_key_is_new(
    db_url: str, world: World, autocommit: Any, keys: KeyRing
) -> None:
    """The worker computes a batch's grouping and Merkle root in its prepare stage as if
    every key were new; a batch with keys seen before must be grouped again, or its event
    would commit to records it did not write."""
    first = _batch(autocommit, world, [1, 2, 3])
    precompute_evidence(first)
    assert first.all_new_evidence is not None
    write_batch(autocommit, first, keys=keys)
    resent = _batch(autocommit, world, [2, 3, 4, 5])
    precompute_evidence(resent)
    written = write_batch(autocommit, resent, keys=keys)
    assert (written.sets, written.batch_events) == (2, 1)
    seqs = [
        r["seq"]
        for r in autocommit.execute(
            "select seq from trace_events where kind = 'ingest_batch' order by seq"
        ).fetchall()
    ]
    payloads = [
        r["payload"]
        for r in autocommit.execute(
            "select payload from trace_events where kind = 'ingest_batch' order by seq"
        ).fetchall()
    ]
    assert [p["size"] for p in payloads] == [3, 2]
    for seq in seqs:
        assert verify_batch(autocommit, seq) == []
