"""Evidence of what ingest stored (trace/batches.py): one 'ingest_batch' chain event per
committed batch and cooperative, whose Merkle root covers the batch's records. Real
broker, real consumer, real database; then the attacks of issue 11 with plain SQL, each
named with its record, and an untouched store that verifies."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import psycopg
import pytest

from coffeetrace.ingest.service import IngestService
from coffeetrace.ingest.topics import device_topic
from coffeetrace.settings import Settings
from coffeetrace.trace import batches
from coffeetrace.trace.chain import EVENT_DOMAIN
from coffeetrace.trace.keys import KeyRing
from tests.factories import World
from tests.ingest.helpers import now_ms, publish_all, scalar, wait_until

SOIL_SETS = 8  # ledger keys of the soil node published by `_publish`
HARVESTS = 4


def _publish(s: Settings, world: World, t: int) -> None:
    """Telemetry (single sets, an offline buffer, a tree-bound set) and harvests."""
    soil = world.devices["soil"].username
    scale = world.devices["scale"].username
    tel = device_topic(s.topic_prefix, soil, "telemetry")
    har = device_topic(s.topic_prefix, scale, "harvest")
    publish_all(
        s.mqtt_url,
        [
            (tel, {"seq": 1, "ts": t - 9000, "values": {"temperature": 21.5}}),
            (
                tel,
                {
                    "seq": 2,
                    "ts": t - 8000,
                    "values": {"temperature": 22.1, "relativeHumidity": 81.25},
                },
            ),
            (
                tel,
                [
                    {
                        "seq": 10 + i,
                        "ts": t - 60_000 + i * 1000,
                        "values": {"soilMoistureVwc": 30 + i / 3, "soilTemperature": 24.0 + i},
                    }
                    for i in range(5)
                ],
            ),
            (
                tel,
                {
                    "msg_id": "tree-set",
                    "ts": t - 7000,
                    "tree": "T-00001",
                    "values": {"soilMoistureVwc": 28.75},
                },
            ),
            (
                har,
                {
                    "seq": 1,
                    "ts": t - 5000,
                    "tree": "T-00000",
                    "cherry_kg": 4.2,
                    "ripeness_pct": 92.5,
                    "picker": "PK-0012",
                },
            ),
            (har, {"seq": 2, "ts": t - 4000, "tree": "T-00001", "cherry_kg": 2.0005}),
            (
                har,
                {"seq": 3, "ts": t - 3000, "tree": "T-00002", "cherry_kg": 7, "ripeness_pct": 88},
            ),
            (har, {"msg_id": "h-4", "ts": t - 2000, "tree": "T-00000", "cherry_kg": 0.5}),
        ],
    )
    db = s.database_url
    assert wait_until(
        lambda: scalar(db, "select count(*) from ingest_messages") == SOIL_SETS + HARVESTS
    )


@pytest.fixture
def stored(
    ingest_settings: Settings, world: World, service: IngestService, conn: psycopg.Connection
) -> dict[str, Any]:
    _publish(ingest_settings, world, now_ms())
    conn.commit()
    return {
        "harvests": {
            r["msg_id"]: r["id"]
            for r in conn.execute("select id, msg_id from harvest_events").fetchall()
        },
        "events": [
            r["seq"]
            for r in conn.execute(
                "select seq from trace_events where kind = 'ingest_batch' order by seq"
            ).fetchall()
        ],
    }


def _records(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(device, key, kind) of every record of every stored batch."""
    rows = conn.execute("select device_ids, msg_ids, kinds from ingest_batches").fetchall()
    return [
        (d, m, k)
        for r in rows
        for d, m, k in zip(r["device_ids"], r["msg_ids"], r["kinds"], strict=True)  # type: ignore[call-overload]
    ]


def _named(problems: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(p["record"]["type"], p["record"]["id"]) for p in problems if p["record"]}


def test_every_committed_record_is_in_one_batch_that_verifies(
    stored: dict[str, Any], conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    soil, scale = world.devices["soil"].username, world.devices["scale"].username
    records = _records(conn)
    assert Counter(k for _, _, k in records) == {"telemetry": SOIL_SETS, "harvest": HARVESTS}
    assert len(set(records)) == len(records)
    keys_stored = {
        (r["device_id"], r["msg_id"])
        for r in conn.execute("select device_id, msg_id from ingest_messages").fetchall()
    }
    assert {(d, m) for d, m, _ in records} == keys_stored
    assert (soil, "tree-set") in keys_stored and (scale, "h-4") in keys_stored
    for seq in stored["events"]:
        assert batches.verify_batch(conn, seq) == []
        event = conn.execute("select * from trace_events where seq = %s", (seq,)).fetchone()
        assert event is not None
        assert event["lot_ids"] == [] and event["payload"]["size"] >= 1  # type: ignore[index]
        assert (
            keys.verify(
                world.coop["id"],
                EVENT_DOMAIN,
                event["hash"].encode(),  # type: ignore[index]
                event["signature"],  # type: ignore[index]
            )
            is None
        )
    ids = list(stored["harvests"].values())
    assert batches.verify_harvests(conn, ids) == []
    unsealed = scalar(
        str(conn.info.dsn), "select count(*) from harvest_events where batch_seq is null"
    )
    assert unsealed == 0
    # the harvests' kilograms were stored at the column's scale, as before
    kg = {
        r["msg_id"]: str(r["cherry_kg"])
        for r in conn.execute("select msg_id, cherry_kg from harvest_events").fetchall()
    }
    assert kg == {"1": "4.200", "2": "2.001", "3": "7.000", "h-4": "0.500"}
    for hid in ids:
        proof = batches.harvest_proof(conn, hid)
        row = conn.execute("select * from harvest_events where id = %s", (hid,)).fetchone()
        assert row is not None
        assert batches.check_harvest_proof(proof, row) is None
        json.dumps(proof)  # a JSON document as it stands
        doubled = {**row, "cherry_kg": row["cherry_kg"] * 2}  # type: ignore[index]
        assert batches.check_harvest_proof(proof, doubled) is not None


@pytest.mark.parametrize(
    "edit, field",
    [
        ("update harvest_events set cherry_kg = cherry_kg * 2 where id = %(id)s", "cherry_kg"),
        (
            "update harvest_events set tree_id = (select id from trees where tag_code ="
            " 'T-00002' and cooperative_id = harvest_events.cooperative_id) where id = %(id)s",
            "tree_id",
        ),
        (
            "update harvest_events set time = time + interval '1 second' where id = %(id)s",
            "time",
        ),
        ("update harvest_events set ripeness_pct = 99 where id = %(id)s", "ripeness_pct"),
        ("update harvest_events set device_id = 'scale-x' where id = %(id)s", "device_id"),
    ],
)
def test_an_edited_harvest_is_named(
    stored: dict[str, Any], conn: psycopg.Connection, edit: str, field: str
) -> None:
    target, control = stored["harvests"]["1"], stored["harvests"]["h-4"]
    conn.execute(edit, {"id": target})  # type: ignore[arg-type]
    conn.commit()
    problems = batches.verify_harvests(conn, [target, control])
    assert _named(problems) == {("harvest", str(target))}, problems
    assert all(p["problem"] == "row_mismatch" and p["kind"] == "ingest_batch" for p in problems)
    assert field in problems[0]["detail"] and str(target) in problems[0]["detail"]
    assert batches.verify_harvests(conn, [control]) == []
    seq = conn.execute("select batch_seq from harvest_events where id = %s", (target,)).fetchone()
    assert seq is not None
    in_batch = batches.verify_batch(conn, seq["batch_seq"])  # type: ignore[index]
    assert _named(in_batch) == {("harvest", str(target))}, in_batch
    assert batches.check_harvest_proof(
        batches.harvest_proof(conn, target),
        conn.execute("select * from harvest_events where id = %s", (target,)).fetchone(),  # type: ignore[arg-type]
    )


def _set_of(conn: psycopg.Connection, device: str, key: str) -> tuple[int, Any]:
    """The batch seq and the time of the reading set `key` of `device`."""
    for r in conn.execute(
        "select event_seq, device_ids, msg_ids, times from ingest_batches"
    ).fetchall():
        for d, m, t in zip(r["device_ids"], r["msg_ids"], r["times"], strict=True):  # type: ignore[call-overload]
            if (d, m) == (device, key):
                return r["event_seq"], t  # type: ignore[index]
    raise AssertionError(f"no reading set {device}/{key} in any batch")


@pytest.mark.parametrize(
    "edit, says",
    [
        (
            "update sensor_readings set value = value + 0.5"
            " where device_id = %(d)s and time = %(t)s and metric = 'temperature'",
            "no longer matches",
        ),
        (
            "delete from sensor_readings"
            " where device_id = %(d)s and time = %(t)s and metric = 'relativeHumidity'",
            "ingest stored 2 readings, 1 are there now",
        ),
        (
            "update sensor_readings set time = time - interval '1 hour'"
            " where device_id = %(d)s and time = %(t)s",
            "is gone",
        ),
        (
            "update sensor_readings set tree_id = (select id from trees limit 1)"
            " where device_id = %(d)s and time = %(t)s and metric = 'temperature'",
            "no longer matches",
        ),
        ("delete from sensor_readings where device_id = %(d)s and time = %(t)s", "is gone"),
    ],
)
def test_an_edited_reading_set_is_named(
    stored: dict[str, Any], conn: psycopg.Connection, world: World, edit: str, says: str
) -> None:
    soil = world.devices["soil"].username
    seq, t = _set_of(conn, soil, "2")  # {"temperature": 22.1, "relativeHumidity": 81.25}
    assert batches.verify_batch(conn, seq) == []
    conn.execute(edit, {"d": soil, "t": t})  # type: ignore[arg-type]
    conn.commit()
    problems = batches.verify_batch(conn, seq)
    assert _named(problems) == {("reading_set", f"{soil}/2")}, problems
    assert says in problems[0]["detail"], problems[0]["detail"]
    others = [s for s in stored["events"] if s != seq]
    assert all(batches.verify_batch(conn, s) == [] for s in others)


def test_edited_leaves_or_root_are_named(stored: dict[str, Any], conn: psycopg.Connection) -> None:
    """Editing the row and its leaf together moves the batch off its event's root; editing
    the event's root too breaks the event's hash."""
    from coffeetrace.trace import records

    target = stored["harvests"]["3"]
    conn.execute("update harvest_events set cherry_kg = 70 where id = %s", (target,))
    row = conn.execute("select * from harvest_events where id = %s", (target,)).fetchone()
    assert row is not None
    leaf = records.harvest_leaf(row)
    seq, index = row["batch_seq"], row["batch_index"]  # type: ignore[index]
    conn.execute(
        "update ingest_batches set leaves = overlay(leaves placing %s from %s for 32)"
        " where event_seq = %s",
        (leaf, index * 32 + 1, seq),
    )
    conn.commit()
    problems = batches.verify_harvests(conn, [target])
    assert [p["problem"] for p in problems] == ["row_mismatch"]
    assert "root" in problems[0]["detail"] and problems[0]["seq"] == seq
    leaves = conn.execute(
        "select leaves from ingest_batches where event_seq = %s", (seq,)
    ).fetchone()
    new_root = batches.batch_root(
        [bytes(leaves["leaves"])[i : i + 32] for i in range(0, len(leaves["leaves"]), 32)]  # type: ignore[index]
    )
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{root}', to_jsonb(%s::text))"
        " where seq = %s",
        (new_root.hex(), seq),
    )
    conn.commit()
    problems = batches.verify_harvests(conn, [target])
    assert [p["problem"] for p in problems] == ["hash_mismatch"], problems


def test_a_harvest_without_evidence_is_missing_its_event(
    stored: dict[str, Any], conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    """Inserted with psql beside ingest: no batch recorded it."""
    from tests.trace.builders import insert_harvest

    forged = insert_harvest(conn, world.trees[0], "40", seal=False)
    conn.commit()
    problems = batches.verify_harvests(conn, [forged, stored["harvests"]["1"]])
    assert [(p["problem"], p["record"]["id"]) for p in problems] == [("missing_event", str(forged))]
    # sealed afterwards (what seeders do), it verifies
    batches.seal_harvests(conn, keys, [forged])
    conn.commit()
    assert batches.verify_harvests(conn, [forged]) == []


def test_ledger_duplicates_add_no_second_leaf(
    stored: dict[str, Any], ingest_settings: Settings, conn: psycopg.Connection, world: World
) -> None:
    before = _records(conn)
    events = scalar(
        ingest_settings.database_url,
        "select count(*) from trace_events where kind = 'ingest_batch'",
    )
    # the same messages again (as a device resends its buffer), and one new set
    _publish_again = [
        (
            device_topic(ingest_settings.topic_prefix, world.devices["soil"].username, "telemetry"),
            {"seq": 1, "ts": now_ms(), "values": {"temperature": 99.0}},
        ),
        (
            device_topic(ingest_settings.topic_prefix, world.devices["scale"].username, "harvest"),
            {"seq": 1, "ts": now_ms(), "tree": "T-00000", "cherry_kg": 999},
        ),
        (
            device_topic(ingest_settings.topic_prefix, world.devices["soil"].username, "telemetry"),
            {"seq": 99, "ts": now_ms(), "values": {"temperature": 20.0}},
        ),
    ]
    publish_all(ingest_settings.mqtt_url, _publish_again)
    db = ingest_settings.database_url
    assert wait_until(
        lambda: scalar(db, "select count(*) from ingest_messages") == SOIL_SETS + HARVESTS + 1
    )
    assert wait_until(lambda: len(_records(conn)) == len(before) + 1)
    conn.commit()
    after = _records(conn)
    assert Counter(after) - Counter(before) == {
        (world.devices["soil"].username, "99", "telemetry"): 1
    }
    assert scalar(db, "select count(*) from trace_events where kind = 'ingest_batch'") >= events + 1
    for r in conn.execute("select seq from trace_events where kind = 'ingest_batch'").fetchall():
        assert batches.verify_batch(conn, r["seq"]) == []  # type: ignore[index]


def test_a_poison_message_isolated_leaves_the_others_evidence_whole(
    ingest_settings: Settings, world: World, conn: psycopg.Connection
) -> None:
    """A message the database refuses splits its batch (worker._isolate): each part that
    commits gets its own chain entry, the poison none, and every entry verifies."""
    conn.execute("alter table sensor_readings add constraint poison_check check (value <> 13.37)")
    conn.commit()
    s = ingest_settings
    soil = world.devices["soil"].username
    topic = device_topic(s.topic_prefix, soil, "telemetry")
    t = now_ms()
    messages = [
        (topic, {"seq": i, "ts": t - 100_000 + i, "values": {"temperature": 20 + i / 100}})
        for i in range(1, 41)
    ]
    messages.insert(20, (topic, {"seq": 1000, "ts": t, "values": {"temperature": 13.37}}))
    svc = IngestService(s)
    svc.start()
    try:
        publish_all(s.mqtt_url, messages)
        db = s.database_url
        assert wait_until(lambda: scalar(db, "select count(*) from ingest_messages") == 40)
        assert wait_until(lambda: scalar(db, "select count(*) from dead_letters") == 1)
    finally:
        svc.stop()
    conn.commit()
    reason = scalar(s.database_url, "select reason from dead_letters")
    assert reason.startswith("store_refused")
    records = _records(conn)
    assert sorted(int(m) for _, m, _ in records) == list(range(1, 41))
    events = [
        r["seq"]
        for r in conn.execute("select seq from trace_events where kind = 'ingest_batch'").fetchall()
    ]
    assert events
    for seq in events:
        assert batches.verify_batch(conn, seq) == []


def test_two_sets_of_one_device_at_the_same_time_still_verify(
    ingest_settings: Settings, world: World, service: IngestService, conn: psycopg.Connection
) -> None:
    """Two keys, one time: their readings share (device_id, time); each set is found among
    them (migration 0043's fallback), and an edit of one is still named."""
    s = ingest_settings
    soil = world.devices["soil"].username
    topic = device_topic(s.topic_prefix, soil, "telemetry")
    t = now_ms()
    publish_all(
        s.mqtt_url,
        [
            (topic, {"seq": 1, "ts": t, "values": {"temperature": 21.0, "leafWetness": 3.0}}),
            (topic, {"seq": 2, "ts": t, "values": {"temperature": 21.5}}),
        ],
    )
    assert wait_until(lambda: scalar(s.database_url, "select count(*) from ingest_messages") == 2)
    conn.commit()
    seqs = [
        r["seq"]
        for r in conn.execute("select seq from trace_events where kind = 'ingest_batch'").fetchall()
    ]
    assert all(batches.verify_batch(conn, seq) == [] for seq in seqs)
    conn.execute("update sensor_readings set value = 30 where metric = 'leafWetness'")
    conn.commit()
    named = set().union(*(_named(batches.verify_batch(conn, seq)) for seq in seqs))
    assert named == {("reading_set", f"{soil}/1")}


def test_a_batch_whose_evidence_cannot_be_written_commits_nothing(
    db_url: str, world: World, tmp_path: Any
) -> None:
    """No usable key directory: write_batch raises EvidenceError (the worker retries it and
    acknowledges nothing; no message is blamed) and nothing of the batch is stored."""
    from psycopg.rows import dict_row

    from coffeetrace.ingest.devices import DeviceCache
    from coffeetrace.ingest.store import EvidenceError, write_batch
    from coffeetrace.ingest.topics import Incoming
    from coffeetrace.ingest.validate import Preparer

    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the key directory should be")
    topic = device_topic("t/coffeetrace/v1", world.devices["soil"].username, "telemetry")
    message = Incoming(
        topic,
        json.dumps({"seq": 1, "ts": now_ms(), "values": {"temperature": 20}}).encode(),
        1,
        1,
        0,
        0.0,
    )
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        prepared = Preparer(
            "t/coffeetrace/v1", DeviceCache(), max_payload_bytes=65536, clock_skew_s=300
        ).prepare(conn, [message])
        with pytest.raises(EvidenceError):
            write_batch(conn, prepared, keys=KeyRing(blocked / "keys"))
    assert scalar(db_url, "select count(*) from ingest_messages") == 0
    assert scalar(db_url, "select count(*) from sensor_readings") == 0
