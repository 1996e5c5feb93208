"""Plausibility flags: stored, queryable, never a refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg

from coffeetrace.trace import lots, plausibility, registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, insert_harvest


def test_flags_for_yield_planting_date_and_position(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=3)
    coop = w.coop["id"]
    normal, heavy, _ = w.trees
    # 3 x 10 kg typical = 30 kg: 31 kg over two pickings is flagged, 25 kg is not
    hs = [
        insert_harvest(conn, heavy, 16, time=T0),
        insert_harvest(conn, heavy, 15, time=T0 + timedelta(days=20)),
        insert_harvest(conn, normal, 25, time=T0),
    ]
    young = registry.create_tree(
        conn,
        coop,
        w.plot["id"],
        "T-NEW",
        keys=keys,
        lon=108.0505,
        lat=12.6805,
        planted_on=date(2027, 1, 1),
    )
    outside = registry.create_tree(
        conn, coop, w.plot["id"], "T-FAR", keys=keys, lon=108.2, lat=12.9
    )
    hs.append(insert_harvest(conn, young, 2, time=T0))
    hs.append(insert_harvest(conn, outside, 3, time=T0))
    lot = lots.build_cherry_lot(conn, coop, code="L", harvest_ids=hs, keys=keys)
    flags = plausibility.flags_for_lot(conn, lot["id"])
    got = {(f["kind"], f["tag_code"]) for f in flags}
    assert got == {
        ("tree_season_yield", heavy["tag_code"]),
        ("harvest_before_planting", "T-NEW"),
        ("tree_outside_plot", "T-FAR"),
    }
    season = next(f for f in flags if f["kind"] == "tree_season_yield")
    assert season["season"] == 2026
    assert season["details"]["season_cherry_kg"] == "31.000"
    assert season["details"]["limit_kg"] == 30.0
    stored = plausibility.flags_for_cooperative(conn, coop)
    assert {(f["kind"], f["tag_code"]) for f in stored} == got
    # building again from the same trees adds no duplicate flag
    extra = insert_harvest(conn, normal, 1, time=T0 + timedelta(days=1))
    lots.build_cherry_lot(conn, coop, code="L2", harvest_ids=[extra], keys=keys)
    assert len(plausibility.flags_for_cooperative(conn, coop)) == 3


def test_young_trees_have_a_lower_limit(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=0)
    coop = w.coop["id"]
    young = registry.create_tree(
        conn, coop, w.plot["id"], "T-Y", keys=keys, planted_on=date(2025, 6, 1)
    )
    h = insert_harvest(conn, young, 12, time=datetime(2026, 11, 15, tzinfo=UTC))
    lot = lots.build_cherry_lot(conn, coop, code="Y", harvest_ids=[h], keys=keys)
    flags = plausibility.flags_for_lot(conn, lot["id"])
    assert [f["kind"] for f in flags] == ["tree_season_yield"]
    assert flags[0]["details"]["limit_kg"] == 9.0
    assert plausibility.flags_for_lot(conn, lot["id"], factor=5) == []


def test_flags_follow_the_lot_downstream(conn: psycopg.Connection, keys: KeyRing) -> None:
    from coffeetrace.trace import processing

    w = make_world(conn, keys=keys, trees=1)
    far = registry.create_tree(
        conn, w.coop["id"], w.plot["id"], "T-FAR", keys=keys, lon=109.0, lat=13.0
    )
    lot = lots.build_cherry_lot(
        conn,
        w.coop["id"],
        code="C",
        harvest_ids=[insert_harvest(conn, far, 5), insert_harvest(conn, w.trees[0], 5)],
        keys=keys,
    )
    dried = processing.record_transformation(
        conn,
        w.coop["id"],
        step="drying",
        occurred_at=T0 + timedelta(days=5),
        inputs=[(lot["id"], 10)],
        outputs=[{"code": "D", "kg": 5, "kind": "dried_cherry"}],
        keys=keys,
    )
    flags = plausibility.flags_for_lot(conn, dried["outputs"][0]["id"])
    assert [(f["kind"], f["tag_code"]) for f in flags] == [("tree_outside_plot", "T-FAR")]
