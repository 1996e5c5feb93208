"""Transformations: mass balance per step, consumption limits, errors naming the figures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from coffeetrace.errors import Conflict, NotFound, RuleViolation
from coffeetrace.trace import lot_lookup, lots, processing
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import harvest_trees

WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _cherry(conn: psycopg.Connection, keys: KeyRing, kg: float = 10, trees: int = 2) -> tuple:
    w = make_world(conn, keys=keys, trees=trees)
    hs = harvest_trees(conn, w.trees, kg)
    return w, lots.build_cherry_lot(conn, w.coop["id"], code="C", harvest_ids=hs, keys=keys)


def test_output_above_step_yield_is_refused_with_figures(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)  # 20 kg of cherry
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="drying",
            occurred_at=WHEN,
            inputs=[(lot["id"], 20)],
            outputs=[{"code": "D", "kg": 12.5, "kind": "green"}],
            keys=keys,
        )
    err = exc.value
    assert err.rule == "mass_balance" and err.status_code == 422
    assert err.details == {
        "rule": "mass_balance",
        "step": "drying",
        "input_kg": "20.000",
        "output_kg": "12.500",
        "max_yield": 0.6,
        "max_output_kg": "12.000",
    }
    ok = processing.record_transformation(
        conn,
        w.coop["id"],
        step="drying",
        occurred_at=WHEN,
        inputs=[(lot["id"], 20)],
        outputs=[{"code": "D", "kg": 12, "kind": "dried_cherry"}],
        keys=keys,
    )
    assert ok["transformation"]["output_kg"] == Decimal("12.000")


def test_cherry_to_green_default_is_a_quarter(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys)
    with pytest.raises(RuleViolation, match="0.25"):
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="cherry_to_green",
            occurred_at=WHEN,
            inputs=[(lot["id"], 20)],
            outputs=[{"code": "G", "kg": 5.001, "kind": "green"}],
            keys=keys,
        )
    processing.record_transformation(
        conn,
        w.coop["id"],
        step="cherry_to_green",
        occurred_at=WHEN,
        inputs=[(lot["id"], 20)],
        outputs=[{"code": "G", "kg": 5, "kind": "green"}],
        keys=keys,
    )


def test_configured_yields_override_defaults(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys)
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="drying",
            occurred_at=WHEN,
            inputs=[(lot["id"], 20)],
            outputs=[{"code": "D", "kg": 9, "kind": "dried_cherry"}],
            max_yield={"drying": 0.4},
            keys=keys,
        )
    assert exc.value.details["max_output_kg"] == "8.000"
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="fermenting",
            occurred_at=WHEN,
            inputs=[(lot["id"], 20)],
            outputs=[{"code": "D", "kg": 9}],
            keys=keys,
        )
    assert exc.value.rule == "unknown_step"


def test_lot_cannot_be_consumed_beyond_what_is_left(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)
    processing.record_transformation(
        conn,
        w.coop["id"],
        step="splitting",
        occurred_at=WHEN,
        inputs=[(lot["id"], 15)],
        outputs=[{"code": "S1", "kg": 15, "kind": "cherry"}],
        keys=keys,
    )
    assert lot_lookup.get_lot(conn, w.coop["id"], lot["id"])["remaining_kg"] == Decimal("5.000")
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="splitting",
            occurred_at=WHEN,
            inputs=[(lot["id"], 6)],
            outputs=[{"code": "S2", "kg": 6, "kind": "cherry"}],
            keys=keys,
        )
    assert exc.value.rule == "lot_overdrawn"
    assert exc.value.details["remaining_kg"] == "5.000"
    assert exc.value.details["requested_kg"] == "6.000"
    assert exc.value.details["code"] == "C"
    # the refusal rolled back only its own savepoint: the caller's transaction goes on
    processing.record_transformation(
        conn,
        w.coop["id"],
        step="splitting",
        occurred_at=WHEN,
        inputs=[(lot["id"], 5)],
        outputs=[{"code": "S2", "kg": 5, "kind": "cherry"}],
        keys=keys,
    )
    assert lot_lookup.get_lot(conn, w.coop["id"], lot["id"])["remaining_kg"] == Decimal("0.000")


@pytest.mark.parametrize(
    "inputs, outputs, rule",
    [
        ("none", [{"code": "X", "kg": 1}], "no_inputs"),
        ("lot", [], "no_outputs"),
        ("zero", [{"code": "X", "kg": 1}], "positive_kg"),
        ("lot", [{"code": "X", "kg": 0}], "positive_kg"),
        ("twice", [{"code": "X", "kg": 1}], "duplicate_input"),
    ],
)
def test_malformed_steps_are_refused(
    conn: psycopg.Connection, inputs: object, outputs: list, rule: str, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)
    ins = {
        "none": [],
        "lot": [(lot["id"], 5)],
        "zero": [(lot["id"], 0)],
        "twice": [(lot["id"], 1), (lot["id"], 2)],
    }.get(inputs, inputs)  # type: ignore[call-overload]
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="grading",
            occurred_at=WHEN,
            inputs=ins,
            outputs=outputs,
            keys=keys,
        )
    assert exc.value.rule == rule


def test_refused_step_leaves_nothing_behind(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys)
    other, their_lot = _cherry_in(conn, keys=keys)
    with pytest.raises(NotFound):
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="blending",
            occurred_at=WHEN,
            inputs=[(lot["id"], 5), (their_lot["id"], 5)],
            outputs=[{"code": "B", "kg": 10, "kind": "blend"}],
            keys=keys,
        )
    conn.rollback()
    assert conn.execute("select count(*) as n from transformations").fetchone()["n"] == 0  # type: ignore[index]


def _cherry_in(conn: psycopg.Connection, keys: KeyRing) -> tuple:
    w = make_world(conn, keys=keys, trees=1, lon=108.4)
    hs = harvest_trees(conn, w.trees, 10)
    return w, lots.build_cherry_lot(conn, w.coop["id"], code="THEIRS", harvest_ids=hs, keys=keys)


def test_output_code_reuse_is_a_conflict(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys)
    with pytest.raises(Conflict):
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="grading",
            occurred_at=WHEN,
            inputs=[(lot["id"], 5)],
            outputs=[{"code": "C", "kg": 5, "kind": "cherry"}],
            keys=keys,
        )


def test_step_records_place_measurements_evidence(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys)
    r = processing.record_transformation(
        conn,
        w.coop["id"],
        step="grading",
        occurred_at=WHEN,
        inputs=[(lot["id"], 20)],
        outputs=[
            {"code": "A", "kg": 12, "kind": "cherry"},
            {"code": "B", "kg": 8, "kind": "cherry"},
        ],
        place="Cư M'gar warehouse",
        measurements={"screen_size": 18, "defect_count": 3},
        evidence=[{"type": "certificate", "name": "Rainforest Alliance"}],
        keys=keys,
    )
    t = processing.get_transformation(conn, w.coop["id"], r["transformation"]["id"])
    assert t["place"] == "Cư M'gar warehouse"
    assert t["measurements"] == {"screen_size": 18, "defect_count": 3}
    assert t["evidence"] == [{"type": "certificate", "name": "Rainforest Alliance"}]
    assert sorted(o["kg"] for o in t["outputs"]) == [Decimal("8.000"), Decimal("12.000")]
    assert [o["kind"] for o in r["outputs"]] == ["cherry", "cherry"]
    assert all(o["produced_by"] == t["id"] for o in r["outputs"])


def test_yields_compound_across_steps(conn: psycopg.Connection, keys: KeyRing) -> None:
    w, lot = _cherry(conn, keys=keys, kg=50)  # 100 kg of fresh cherry
    dried = processing.record_transformation(
        conn,
        w.coop["id"],
        step="drying",
        occurred_at=WHEN,
        inputs=[(lot["id"], 100)],
        outputs=[{"code": "D", "kg": 60, "kind": "dried_cherry"}],
        keys=keys,
    )["outputs"][0]
    assert dried["cherry_equiv_kg"] == Decimal("100")
    # hulling alone allows 0.6 x 60 = 36 kg, but green may be at most 0.25 of the cherry
    with pytest.raises(RuleViolation) as exc:
        processing.record_transformation(
            conn,
            w.coop["id"],
            step="hulling",
            occurred_at=WHEN,
            inputs=[(dried["id"], 60)],
            outputs=[{"code": "G", "kg": 30, "kind": "green"}],
            keys=keys,
        )
    assert exc.value.rule == "cherry_yield"
    assert exc.value.details["cherry_kg"] == "100.000"
    assert exc.value.details["max_output_kg"] == "25.000"
    half = processing.record_transformation(
        conn,
        w.coop["id"],
        step="hulling",
        occurred_at=WHEN,
        inputs=[(dried["id"], 30)],
        outputs=[{"code": "G", "kg": 12.5, "kind": "green"}],
        keys=keys,
    )["outputs"][0]
    assert half["cherry_equiv_kg"] == Decimal("50")
