"""Trace queries from plots, farms and lots; whole-chain verification."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import genealogy, lots, processing, verification
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, harvest_trees
from tests.trace.chain import build_chain


def test_forward_from_plot_farm_and_lot(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    packed = built["packed"]["id"]
    from_plot = genealogy.trace_forward(conn, plot_id=built["world"].plot["id"])
    from_farm = genealogy.trace_forward(conn, farm_id=built["world"].farm["id"])
    assert {r["lot_id"] for r in from_plot["lots"]} == {r["lot_id"] for r in from_farm["lots"]}
    share = next(r["share"] for r in from_farm["lots"] if r["lot_id"] == packed)
    assert share == pytest.approx(1 / 3, abs=1e-12)
    cherry = built["lots"][0]["id"]
    from_lot = genealogy.trace_forward(conn, lot_id=cherry)
    assert from_lot["lots"][0] == {
        **from_lot["lots"][0],
        "lot_id": cherry,
        "depth": 0,
        "share": 1.0,
        "terminal": False,
    }
    codes = [r["code"] for r in from_lot["lots"]]
    assert codes == ["CH-1", "DR-1", "GR-1", "GR-1-S16", "GR-1-S18", "BL-1", "RO-1", "PK-1"]
    assert [r["terminal"] for r in from_lot["lots"] if r["code"] in ("GR-1-S16", "PK-1")] == [
        True,
        True,
    ]
    with pytest.raises(ValidationFailed):
        genealogy.trace_forward(conn, lot_id=cherry, tree_id=built["tree4"]["id"])
    with pytest.raises(NotFound):
        genealogy.trace_backward(conn, built["world"].plot["id"])
    unharvested = make_world(conn, keys=keys, trees=1, lon=108.6)
    assert genealogy.trace_forward(conn, tree_id=unharvested.trees[0]["id"])["lots"] == []


def test_verify_chain_walks_every_event(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    coop = built["world"].coop["id"]
    report = verification.verify_chain(conn, coop, batch=4, keys=keys)
    stored = conn.execute(
        "select count(*) as n, count(*) filter (where kind in ('lot_created', 'transformation'))"
        " as lot_events from trace_events where cooperative_id = %s",
        (coop,),
    ).fetchone()
    assert stored["lot_events"] == 9  # type: ignore[index]
    assert report["ok"] and report["checked_events"] == stored["n"]  # type: ignore[index]
    edited = conn.execute(
        "select seq from trace_events where kind in ('lot_created', 'transformation')"
        " order by seq offset 4 limit 1"
    ).fetchone()["seq"]  # type: ignore[index]
    conn.execute(
        "update trace_events set occurred_at = occurred_at - interval '1 hour' where seq = %s",
        (edited,),
    )
    report = verification.verify_chain(conn, coop, batch=4, keys=keys)
    # the edited event is the only one named: its hash (and so its signature, and the
    # checkpoints' root over the chain) no longer holds
    named = {(p["seq"], p["problem"]) for p in report["problems"] if p["kind"] != "checkpoint"}
    assert named == {(edited, "hash_mismatch"), (edited, "signature_invalid")}
    assert {p["problem"] for p in report["problems"] if p["kind"] == "checkpoint"} <= {
        "not_in_checkpoint"
    }


def test_concurrent_steps_cannot_overdraw_a_lot(db_url: str, keys: KeyRing) -> None:
    with psycopg.connect(db_url, row_factory=dict_row) as setup:
        w = make_world(setup, keys=keys, trees=2)
        lot = lots.build_cherry_lot(
            setup, w.coop["id"], code="C", harvest_ids=harvest_trees(setup, w.trees, 5), keys=keys
        )
        setup.commit()
    results: list[str] = []
    barrier = threading.Barrier(2)

    def take(code: str) -> None:
        with psycopg.connect(db_url, row_factory=dict_row) as c:
            barrier.wait()
            try:
                processing.record_transformation(
                    c,
                    w.coop["id"],
                    step="splitting",
                    occurred_at=T0 + timedelta(days=1),
                    inputs=[(lot["id"], 6)],
                    outputs=[{"code": code, "kg": 6, "kind": "cherry"}],
                    keys=keys,
                )
                c.commit()
                results.append("ok")
            except RuleViolation as exc:
                results.append(exc.rule)

    threads = [threading.Thread(target=take, args=(code,)) for code in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lot_overdrawn", "ok"]
