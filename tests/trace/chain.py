"""The chain of the trace done-when (harvests -> cherry lot -> drying -> hulling -> grading
into two grades -> blend with another farm's lot -> roasting -> packing), and the checks
several tests run on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from coffeetrace.trace import (
    genealogy,
    lots,
    processing,
    registry,
)
from coffeetrace.trace.keys import KeyRing
from tests.factories import World, make_world, square
from tests.trace.builders import T0, insert_harvest

DAY = timedelta(days=1)


Harvest = Callable[[psycopg.Connection, World, dict[str, Any], float, datetime], Any]


def stored_harvest(
    conn: psycopg.Connection, world: World, tree: dict[str, Any], kg: float, time: datetime
) -> Any:
    return insert_harvest(conn, tree, kg, time=time)


def build_chain(
    conn: psycopg.Connection, harvest: Harvest = stored_harvest, *, keys: KeyRing
) -> dict[str, Any]:
    """The whole chain; `harvest(conn, world, tree, kg, time)` stores one harvest (directly,
    or over MQTT through ingest) and returns its id. `keys` sign the chain's events."""
    world = make_world(conn, keys=keys, trees=3)
    coop = world.coop["id"]
    product = registry.create_product(
        conn, coop, "Robusta Đắk Lắk roasted", keys=keys, kind="packed", gtin="08930000000033"
    )
    # a second farm of the same cooperative, with a 6-ha plot (polygon in the EUDR export)
    farm2 = registry.create_farm(conn, coop, "F-OTHER", keys=keys, display_name="Other farm")
    plot2 = registry.create_plot(
        conn, coop, farm2["id"], "P-BIG", square(108.1, 12.7, 0.025), 6.0, keys=keys
    )
    tree4 = registry.create_tree(
        conn, coop, plot2["id"], "T-BIG-1", keys=keys, lon=108.11, lat=12.71
    )
    # farm 1: trees give 10, 6 and 4 kg of cherry (shares 0.5, 0.3, 0.2 of its lot)
    kgs = [10, 6, 4]
    harvests = [
        harvest(conn, world, t, kg, T0 + i * DAY)
        for i, (t, kg) in enumerate(zip(world.trees, kgs, strict=True))
    ]
    h4 = harvest(conn, world, tree4, 30, T0)
    lot1 = lots.build_cherry_lot(conn, coop, code="CH-1", harvest_ids=harvests, keys=keys)
    lot2 = lots.build_cherry_lot(
        conn,
        coop,
        code="CH-2",
        tree_ids=[tree4["id"]],
        since=T0 - DAY,
        until=T0 + DAY,
        keys=keys,
    )
    assert lot2["harvests"][0]["harvest_id"] == h4

    def step(
        name: str, inputs: list[tuple[Any, Any]], outputs: list[dict[str, Any]], day: int, **kw: Any
    ) -> list[dict[str, Any]]:
        return processing.record_transformation(
            conn,
            coop,
            step=name,
            occurred_at=T0 + day * DAY,
            inputs=inputs,
            outputs=outputs,
            keys=keys,
            **kw,
        )["outputs"]

    dried = step(
        "drying",
        [(lot1["id"], 20)],
        [{"code": "DR-1", "kg": 10, "kind": "dried_cherry"}],
        10,
        place="Ea Tu drying yard",
        measurements={"moisture_pct": 12.5},
    )
    hulled = step(
        "hulling", [(dried[0]["id"], 10)], [{"code": "GR-1", "kg": 5, "kind": "green"}], 12
    )
    grade_a, grade_b = step(
        "grading",
        [(hulled[0]["id"], 5)],
        [
            {"code": "GR-1-S18", "kg": 3, "kind": "green"},
            {"code": "GR-1-S16", "kg": 2, "kind": "green"},
        ],
        13,
        measurements={"screen_size": 18, "defect_count": 4},
        evidence=[{"type": "certificate", "name": "4C", "url": "https://example.org/4c.pdf"}],
    )
    other_green = step(
        "cherry_to_green", [(lot2["id"], 30)], [{"code": "GR-2", "kg": 6, "kind": "green"}], 12
    )
    blend = step(
        "blending",
        [(grade_a["id"], 3), (other_green[0]["id"], 6)],
        [{"code": "BL-1", "kg": 9, "kind": "blend"}],
        14,
        measurements={"cupping_score": 84.5},
    )
    roasted = step(
        "roasting",
        [(blend[0]["id"], 9)],
        [{"code": "RO-1", "kg": 7.5, "kind": "roasted"}],
        15,
        measurements={"roast_level": "medium"},
    )
    packed = step(
        "packing",
        [(roasted[0]["id"], 7.5)],
        [{"code": "PK-1", "kg": 7.5, "kind": "packed", "product_id": product["id"]}],
        16,
    )
    conn.commit()
    return {
        "world": world,
        "tree4": tree4,
        "packed": packed[0],
        "grade_b": grade_b,
        "lots": [lot1, lot2],
        "plot2": plot2,
        "farm2": farm2,
    }


def check_backward_shares(conn: psycopg.Connection, built: dict[str, Any]) -> None:
    trace = genealogy.trace_backward(conn, built["packed"]["id"])
    shares = {t["tag_code"]: t["share"] for t in trace["trees"]}
    # the blend is 3 kg of farm 1's grade (1/3) and 6 kg of farm 2's green (2/3);
    # inside farm 1's lot the trees gave 10, 6 and 4 of 20 kg
    expected = {
        "T-00000": 1 / 3 * 0.5,
        "T-00001": 1 / 3 * 0.3,
        "T-00002": 1 / 3 * 0.2,
        "T-BIG-1": 2 / 3,
    }
    assert shares.keys() == expected.keys()
    for tag, share in expected.items():
        assert shares[tag] == pytest.approx(share, abs=1e-12)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    farms = {f["code"]: f["kg"] for f in trace["farms"]}
    assert farms == {built["world"].farm["code"]: pytest.approx(2.5), "F-OTHER": pytest.approx(5.0)}
    steps = [t["step"] for t in trace["transformations"]]
    assert sorted(steps) == sorted(
        ["drying", "hulling", "grading", "cherry_to_green", "blending", "roasting", "packing"]
    )
    # the second grade is not in the packed lot
    assert built["grade_b"]["id"] not in {r["lot_id"] for r in trace["lots"]}


def check_forward_reach(conn: psycopg.Connection, built: dict[str, Any]) -> None:
    packed_id = built["packed"]["id"]
    backward = {
        t["tree_id"]: t["share"] for t in genealogy.trace_backward(conn, packed_id)["trees"]
    }
    for tree in [*built["world"].trees, built["tree4"]]:
        fwd = genealogy.trace_forward(conn, tree_id=tree["id"])
        by_id = {r["lot_id"]: r for r in fwd["lots"]}
        assert packed_id in by_id
        assert by_id[packed_id]["public_id"] == built["packed"]["public_id"]
        assert by_id[packed_id]["terminal"] is True
        assert by_id[packed_id]["share"] == pytest.approx(backward[tree["id"]], abs=1e-12)
    # from farm 1's first tree the second grade is reached too (a recall must find it)
    fwd = genealogy.trace_forward(conn, tree_id=built["world"].trees[0]["id"])
    assert built["grade_b"]["id"] in {r["lot_id"] for r in fwd["lots"]}
    # the other farm's tree does not reach farm 1's second grade
    fwd4 = genealogy.trace_forward(conn, farm_id=built["farm2"]["id"])
    assert built["grade_b"]["id"] not in {r["lot_id"] for r in fwd4["lots"]}
