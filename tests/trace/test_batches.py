"""Sealing harvests stored other than by ingest, their proofs, and what verification says
about batches that were tampered with (trace/batches.py). Ingest itself is covered in
tests/ingest/test_batch_evidence.py."""

from __future__ import annotations

import copy
from datetime import timedelta

import psycopg

from coffeetrace.trace import batches
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, insert_harvest


def test_seal_cooperative_in_chunks(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=3)
    ids = [
        insert_harvest(conn, t, 2 + i, time=T0 + timedelta(minutes=i), seal=False)
        for i, t in enumerate(w.trees * 2)
    ]
    assert [p["problem"] for p in batches.verify_harvests(conn, ids)] == ["missing_event"] * 6
    done = batches.seal_cooperative(conn, keys, w.coop["id"], chunk=4)
    assert done["sealed"] == 6 and len(done["events"]) == 2
    assert batches.seal_cooperative(conn, keys, w.coop["id"]) == {"sealed": 0, "events": []}
    assert batches.verify_harvests(conn, ids) == []
    assert all(batches.verify_batch(conn, seq) == [] for seq in done["events"])
    assert batches.harvest_batch_seqs(conn, ids) == done["events"]
    sizes = [
        r["payload"]["size"]  # type: ignore[index]
        for r in conn.execute(
            "select payload from trace_events where seq = any(%s) order by seq", (done["events"],)
        ).fetchall()
    ]
    assert sizes == [4, 2]


def test_a_proof_holds_and_every_part_of_it_counts(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=3)
    ids = [
        insert_harvest(conn, t, 5, time=T0 + timedelta(minutes=i), seal=False)
        for i, t in enumerate(w.trees)
    ]
    batches.seal_harvests(conn, keys, ids)
    row = conn.execute("select * from harvest_events where id = %s", (ids[1],)).fetchone()
    assert row is not None
    proof = batches.harvest_proof(conn, ids[1])
    assert proof["tree_size"] == 3 and proof["leaf_index"] == 1
    assert batches.check_harvest_proof(proof, row) is None
    for path, value in (
        (("leaf_index",), 0),
        (("audit_path", 0), "00" * 32),
        (("root",), "11" * 32),
        (("event", "payload", "size"), 4),
        (("event", "prev_hash"), "0" * 64),
        (("harvest_id",), str(ids[0])),
    ):
        forged = copy.deepcopy(proof)
        target = forged
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert batches.check_harvest_proof(forged, row) is not None, path
    assert batches.check_harvest_proof(proof, {**row, "picker_code": "PK-2"}) is not None


def test_a_deleted_or_added_harvest_is_named(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=2)
    a, b = (insert_harvest(conn, t, 3, seal=False) for t in w.trees)
    seq = batches.seal_harvests(conn, keys, [a, b])["events"][0]
    conn.execute("delete from harvest_events where id = %s", (b,))
    problems = batches.verify_batch(conn, seq)
    assert [p["record"]["type"] for p in problems] == ["harvest"]
    assert "is gone" in problems[0]["detail"]
    assert [p["record"]["id"] for p in batches.verify_harvests(conn, [b])] == [str(b)]
    # a forged row that claims a's place
    conn.execute(
        "insert into harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id,"
        " tree_id, cherry_kg, batch_seq, batch_index)"
        " select time, device_id, 'x', cooperative_id, farm_id, plot_id, tree_id, 9, batch_seq,"
        " batch_index from harvest_events where id = %s",
        (a,),
    )
    named = {p["detail"].split(" claims")[0] for p in batches.verify_batch(conn, seq)}
    assert any("/x)" in n for n in named)


def test_a_deleted_event_or_batch_row(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=1)
    h = insert_harvest(conn, w.trees[0], 3, seal=False)
    seq = batches.seal_harvests(conn, keys, [h])["events"][0]
    conn.execute("delete from ingest_batches where event_seq = %s", (seq,))
    problems = batches.verify_harvests(conn, [h])
    assert {p["record"]["id"] for p in problems if p["record"]} == {str(h)}
    assert any("records are gone" in p["detail"] for p in problems)
    assert "has no ingest_batches row" in batches.verify_batch(conn, seq)[0]["detail"]
