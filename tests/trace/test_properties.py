"""Property tests over random processing graphs: shares sum to 1, kilograms stay within
the yield bounds and never overdraw a lot or a harvest, forward and backward traces agree.

Each example runs in a transaction that is rolled back, inside the test's own database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from coffeetrace.errors import RuleViolation
from coffeetrace.settings import DEFAULT_STEP_MAX_YIELD, Settings
from coffeetrace.trace import genealogy, lot_lookup, lots, processing
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, insert_harvest

STEPS = ["drying", "hulling", "grading", "blending", "roasting", "packing", "splitting"]
KG = Decimal("0.001")
KIND_CAPS = Settings().kind_max_yield_from_cherry
KINDS = ["cherry", "dried_cherry", "green", "roasted", "blend", "packed"]


def build_random_graph(
    conn: psycopg.Connection, data: st.DataObject, keys: KeyRing
) -> dict[str, Any]:
    n_trees = data.draw(st.integers(2, 6), label="trees")
    world = make_world(conn, keys=keys, trees=n_trees)
    coop = world.coop["id"]
    harvests = [
        insert_harvest(
            conn, t, data.draw(st.integers(1, 30), label="kg"), time=T0 + timedelta(hours=i)
        )
        for i, t in enumerate(world.trees)
    ]
    n_lots = data.draw(st.integers(1, 3), label="cherry lots")
    groups: dict[int, list] = defaultdict(list)
    for h in harvests:
        groups[data.draw(st.integers(0, n_lots - 1), label="lot of harvest")].append(h)
    available = []
    for i, hs in groups.items():
        # sometimes take only part of the first harvest: the rest stays for later
        part = data.draw(st.sampled_from([None, Decimal("0.5")]), label="part")
        kg = None
        if part is not None:
            left = lots.harvest_remaining(conn, coop, [hs[0]])[hs[0]]
            kg = {hs[0]: (left * part).quantize(KG)}
        available.append(
            lots.build_cherry_lot(
                conn, coop, code=f"C{i}", harvest_ids=hs, harvest_kg=kg, keys=keys
            )
        )
    for n in range(data.draw(st.integers(1, 6), label="steps")):
        open_lots = [lot for lot in available if lot["remaining_kg"] > Decimal("0.01")]
        if not open_lots:
            break
        chosen = data.draw(
            st.lists(
                st.sampled_from(open_lots), min_size=1, max_size=3, unique_by=lambda lot: lot["id"]
            ),
            label="inputs",
        )
        step = data.draw(st.sampled_from(STEPS), label="step")
        inputs = []
        for lot in chosen:
            tenths = data.draw(st.integers(1, 10), label="tenths taken")
            inputs.append((lot["id"], (lot["remaining_kg"] * tenths / 10).quantize(KG)))
        inputs = [(i, kg) for i, kg in inputs if kg > 0]
        if not inputs:
            continue
        total_in = sum(kg for _, kg in inputs)
        n_out = data.draw(st.integers(1, 3), label="outputs")
        kind = data.draw(st.sampled_from(KINDS), label="output kind")
        use = Decimal(data.draw(st.integers(1, 100), label="percent of max")) / 100
        cap = total_in * Decimal(str(DEFAULT_STEP_MAX_YIELD[step]))
        if kind in KIND_CAPS:  # yields compound: the cherry behind the inputs bounds them too
            by_id = {lot["id"]: lot for lot in available}
            cherry = sum(
                kg * by_id[i]["cherry_equiv_kg"] / by_id[i]["quantity_kg"] for i, kg in inputs
            )
            cap = min(cap, cherry * Decimal(str(KIND_CAPS[kind])))
        budget = (cap * use).quantize(KG, rounding="ROUND_DOWN")
        parts = [(budget / n_out).quantize(KG, rounding="ROUND_DOWN")] * n_out
        parts = [p for p in parts if p > 0]
        if not parts:
            continue
        result = processing.record_transformation(
            conn,
            coop,
            step=step,
            occurred_at=T0 + timedelta(days=n + 1),
            inputs=inputs,
            outputs=[{"code": f"S{n}-{k}", "kg": p, "kind": kind} for k, p in enumerate(parts)],
            keys=keys,
        )
        available = [lot_lookup.get_lot(conn, coop, lot["id"]) for lot in available]
        available.extend(result["outputs"])
        # asking for more than is left of an input is always refused
        first = lot_lookup.get_lot(conn, coop, inputs[0][0])
        with pytest.raises(RuleViolation) as exc, conn.transaction():
            processing.record_transformation(
                conn,
                coop,
                step="splitting",
                occurred_at=T0,
                inputs=[(first["id"], first["remaining_kg"] + KG)],
                outputs=[{"code": f"X{n}", "kg": KG, "kind": "green"}],
                keys=keys,
            )
        assert exc.value.rule == "lot_overdrawn"
    return {
        "world": world,
        "lots": [lot_lookup.get_lot(conn, coop, lot["id"]) for lot in available],
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_graphs_keep_the_invariants(db_url: str, data: st.DataObject, keys: KeyRing) -> None:
    with (
        psycopg.connect(db_url, row_factory=dict_row) as conn,
        conn.transaction(force_rollback=True),
    ):
        graph = build_random_graph(conn, data, keys=keys)
        all_lots = graph["lots"]
        backward = {lot["id"]: genealogy.trace_backward(conn, lot["id"]) for lot in all_lots}
        for lot in all_lots:
            trees = backward[lot["id"]]["trees"]
            assert sum(t["share"] for t in trees) == pytest.approx(1.0, abs=1e-9)
            assert sum(f["share"] for f in backward[lot["id"]]["farms"]) == pytest.approx(1.0)
            assert sum(t["kg"] for t in trees) == pytest.approx(float(lot["quantity_kg"]))
            assert Decimal(0) <= lot["remaining_kg"] <= lot["quantity_kg"]
            # kilograms within the compound yield bound of the cherry behind the lot
            cherry_behind = sum(Decimal(str(h["share"])) for h in backward[lot["id"]]["harvests"])
            assert cherry_behind == pytest.approx(Decimal(1))
            if lot["kind"] in KIND_CAPS:
                assert (
                    lot["quantity_kg"]
                    <= lot["cherry_equiv_kg"] * Decimal(str(KIND_CAPS[lot["kind"]])) + KG
                )
        _check_mass_balance(conn)
        # forward from each tree finds exactly the lots whose backward trace names the tree,
        # with the same share
        for tree in graph["world"].trees:
            forward = {
                r["lot_id"]: r["share"]
                for r in genealogy.trace_forward(conn, tree_id=tree["id"])["lots"]
            }
            expected = {
                lot_id: next(t["share"] for t in b["trees"] if t["tree_id"] == tree["id"])
                for lot_id, b in backward.items()
                if any(t["tree_id"] == tree["id"] for t in b["trees"])
            }
            assert forward.keys() == expected.keys()
            for lot_id, share in expected.items():
                assert forward[lot_id] == pytest.approx(share, abs=1e-9)
        # forward from a lot reaches exactly the lots whose backward trace contains it
        for lot in all_lots:
            down = {r["lot_id"] for r in genealogy.trace_forward(conn, lot_id=lot["id"])["lots"]}
            up_of = {
                other
                for other, b in backward.items()
                if lot["id"] in {r["lot_id"] for r in b["lots"]}
            }
            assert down == up_of


def _check_mass_balance(conn: psycopg.Connection) -> None:
    for t in conn.execute(
        "select step, input_kg, output_kg,"
        " (select sum(kg) from transformation_inputs i"
        "   where i.transformation_id = t.id) as ins,"
        " (select sum(kg) from transformation_outputs o"
        "   where o.transformation_id = t.id) as outs"
        " from transformations t"
    ).fetchall():
        assert t["ins"] == t["input_kg"] and t["outs"] == t["output_kg"]  # type: ignore[index]
        assert t["output_kg"] <= t["input_kg"] * Decimal(  # type: ignore[index]
            str(DEFAULT_STEP_MAX_YIELD[t["step"]])
        )  # type: ignore[index]
    for lot in conn.execute(
        "select l.quantity_kg, l.remaining_kg, coalesce((select sum(kg)"
        " from transformation_inputs i where i.lot_id = l.id), 0) as used"
        " from lots l"
    ).fetchall():
        assert lot["remaining_kg"] == lot["quantity_kg"] - lot["used"]  # type: ignore[index]
        assert lot["used"] <= lot["quantity_kg"]  # type: ignore[index]
    for h in conn.execute(
        "select h.cherry_kg, sum(lh.kg) as used from harvest_events h"
        " join lot_harvests lh on lh.harvest_id = h.id"
        " group by h.id, h.cherry_kg"
    ).fetchall():
        assert h["used"] <= h["cherry_kg"]  # type: ignore[index]
