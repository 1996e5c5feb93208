"""The event hash rule: event_hash's hand-assembled body is byte for byte canonical_json of
the documented body, and an appended event's hash covers its payload as jsonb gives it back
(numbers jsonb writes differently from Python included)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from coffeetrace.trace import chain, jsonutil, verification
from coffeetrace.trace.jsonutil import canonical_json
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_event_hash_is_the_documented_rule() -> None:
    payload = {"b": [1, 2.5, "ạ"], "a": {"z": None, "y": True}, "kg": "4.200"}
    body = {
        "seq": 7,
        "cooperative_id": "6d8c6f5e-0c57-4a8b-9a38-5a3c1f0f3a11",
        "kind": "lot_created",
        "lot_ids": ["9a5d4b44-8b86-4f4b-8d2e-2a9a3f5d1c01"],
        "occurred_at": "2026-01-02T03:04:05.678901+00:00",
        "payload": payload,
        "prev_hash": "0" * 64,
    }
    assert (
        chain.event_hash(
            seq=7,
            cooperative_id=body["cooperative_id"],
            kind="lot_created",
            lot_ids=body["lot_ids"],
            occurred_at=WHEN,
            payload=payload,
            prev_hash="0" * 64,
        )
        == hashlib.sha256(canonical_json(body)).hexdigest()
    )


def test_numbers_jsonb_rewrites_still_verify(conn: psycopg.Connection, keys: KeyRing) -> None:
    world = make_world(conn, keys=keys, trees=1)
    coop = world.coop["id"]
    row = chain.append_event(
        conn,
        coop,
        "note",
        [],
        WHEN,
        {"big": 1e16, "neg": -1.5e300, "zero": -0.0, "tiny": 1e-7, "x": 2.0, "n": 10**20},
        keys=keys,
    )
    stored = conn.execute("select * from trace_events where seq = %s", (row["seq"],)).fetchone()
    assert stored is not None
    assert (
        chain.event_hash(
            seq=stored["seq"],
            cooperative_id=stored["cooperative_id"],
            kind=stored["kind"],
            lot_ids=stored["lot_ids"],
            occurred_at=stored["occurred_at"],
            payload=stored["payload"],
            prev_hash=stored["prev_hash"],
        )
        == stored["hash"]
    )
    report = verification.verify_chain(conn, coop, keys=keys)
    assert not [p for p in report["problems"] if p["problem"] == "hash_mismatch"]


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, -0.0, 0.0, 1e16, 2.5e300, 1e-7, 123456789012345.67]},
        {"id": uuid.UUID(int=7), "kg": Decimal("4.200"), "at": datetime(2025, 1, 2, tzinfo=UTC)},
        {"on": date(2025, 1, 2), "text": "not a float: -0.0, 1e+5", "n": None, "t": True},
        {"records": [{"id": "x", "facts": {"lon": -0.0, "lat": 12.5, "g": {"c": [[1, 2]]}}}]},
    ],
)
def test_str_keys_fast_path_gives_canonical_json(value: dict) -> None:
    assert jsonutil.canonical_json_str_keys(value) == jsonutil.canonical_json(value).decode()
