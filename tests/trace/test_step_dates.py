"""A processing step happens after its inputs came to be, and not in the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.api.auth import create_api_key
from coffeetrace.errors import RuleViolation
from coffeetrace.settings import Settings
from coffeetrace.trace import lots, processing
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.rules import TraceRules
from tests.factories import make_world
from tests.trace.builders import T0, harvest_trees


def _cherry(conn: psycopg.Connection, keys: KeyRing) -> tuple:
    w = make_world(conn, keys=keys, trees=2)
    hs = harvest_trees(conn, w.trees, 10)  # at T0 and T0 + 1 min
    return w, lots.build_cherry_lot(conn, w.coop["id"], code="C", harvest_ids=hs, keys=keys)


def _step(
    conn: psycopg.Connection, w: object, lot: dict, when: datetime, *, keys: KeyRing, **kw: object
) -> dict:
    return processing.record_transformation(
        conn,
        w.coop["id"],  # type: ignore[attr-defined]
        step=kw.pop("step", "drying"),  # type: ignore[arg-type]
        occurred_at=when,
        inputs=[(lot["id"], kw.pop("kg", 4))],  # type: ignore[list-item]
        outputs=[{"code": kw.pop("code", "D"), "kg": 2, "kind": "dried_cherry"}],
        keys=keys,
        **kw,  # type: ignore[arg-type]
    )


def test_a_step_before_the_latest_harvest_is_refused(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)
    latest = T0 + timedelta(minutes=1)
    with pytest.raises(RuleViolation) as exc:
        _step(conn, w, lot, T0 + timedelta(seconds=30), keys=keys)
    err = exc.value
    assert err.rule == "step_before_inputs" and err.status_code == 422
    assert err.details["inputs_ready_at"] == latest.isoformat()
    assert err.details["occurred_at"] == (T0 + timedelta(seconds=30)).isoformat()
    assert latest.isoformat() in err.message and err.details["code"] == "C"
    dried = _step(conn, w, lot, latest, keys=keys)["outputs"][0]  # at the harvest itself: fine
    # a grading dated before the drying that made its input
    with pytest.raises(RuleViolation, match="before its input lot D") as before:
        _step(conn, w, dried, latest - timedelta(days=1), step="grading", kg=2, code="G", keys=keys)
    assert before.value.details["inputs_ready_at"] == latest.isoformat()
    _step(conn, w, dried, latest + timedelta(days=3), step="grading", kg=2, code="G", keys=keys)


def test_a_step_in_the_future_is_refused_beyond_the_skew(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)
    with pytest.raises(RuleViolation) as exc:
        _step(conn, w, lot, datetime(2030, 1, 1, tzinfo=UTC), keys=keys)
    assert exc.value.rule == "step_in_future"
    assert "2030-01-01T00:00:00+00:00" in exc.value.message and exc.value.details["now"]
    soon = datetime.now(UTC) + timedelta(seconds=60)
    _step(conn, w, lot, soon, keys=keys)  # within the default skew (300 s)
    with pytest.raises(RuleViolation, match="in the future"):
        _step(conn, w, lot, soon, code="D2", rules=TraceRules(step_clock_skew_s=0), keys=keys)


def test_api_answers_422_naming_both_dates(
    settings: Settings, conn: psycopg.Connection, keys: KeyRing
) -> None:
    w, lot = _cherry(conn, keys=keys)
    token = create_api_key(conn, w.coop["id"], "operator", "t").token
    conn.commit()
    body = {
        "step": "drying",
        "occurred_at": "2026-11-01T08:00:00Z",
        "inputs": [{"lot_id": str(lot["id"]), "kg": 4}],
        "outputs": [{"code": "D", "kg": 2, "kind": "dried_cherry"}],
    }
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/transformations", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 422, r.text
        assert r.json()["details"]["rule"] == "step_before_inputs"
        assert "2026-11-01" in r.json()["message"] and "2026-11-10" in r.json()["message"]
        future = {**body, "occurred_at": "2030-06-01T08:00:00Z"}
        r = client.post(
            "/v1/transformations", json=future, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 422 and r.json()["details"]["rule"] == "step_in_future"
