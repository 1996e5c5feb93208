"""The signed public provenance document (the lot's statement) and the cooperatives'
signing keys: files outside the database, one key ring per cooperative, rotation, forgeries
and the published keys."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace import checkpoints, lots, processing, provenance, statements, verification
from coffeetrace.trace.jsonutil import canonical_json
from coffeetrace.trace.keys import KeyRing, b64url, b64url_decode, verify_with
from tests.factories import make_world
from tests.trace.builders import T0, insert_harvest
from tests.trace.chain import build_chain

STATEMENT = statements.STATEMENT_DOMAIN


def _index(keys: KeyRing, coop: Any) -> list[dict[str, Any]]:
    """The cooperative's keys.json, read as a buyer's copy of the published keys would be."""
    data: list[dict[str, Any]] = json.loads((keys.root / str(coop) / "keys.json").read_text())
    return data


def _public(keys: KeyRing, coop: Any, key_id: str) -> str:
    return next(k["public_key"] for k in _index(keys, coop) if k["key_id"] == key_id)


def _statement(conn: psycopg.Connection, lot_id: Any) -> dict[str, Any]:
    stmt = statements.newest(conn, lot_id)
    assert stmt is not None
    return stmt


def _flipped(signature: dict[str, str]) -> dict[str, str]:
    raw = bytearray(b64url_decode(signature["value"]))
    raw[0] ^= 0x01
    return {**signature, "value": b64url(bytes(raw))}


def test_document_is_signed_at_write_time_and_public_only(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    coop, packed = built["world"].coop["id"], built["packed"]["id"]
    served = statements.served(conn, packed)
    assert served is not None
    doc, sig = served["document"], served["signature"]
    # what is served is what the writer signed, and what the rows still say
    assert doc == _statement(conn, packed)["document"] == provenance.document(conn, packed)
    active = [k for k in _index(keys, coop) if k["valid_until"] is None]
    assert sig["algorithm"] == "Ed25519" and [k["key_id"] for k in active] == [sig["key_id"]]
    public = _public(keys, coop, sig["key_id"])
    assert len(b64url_decode(public)) == 32
    assert verify_with(public, STATEMENT, canonical_json(doc), sig) is None
    assert keys.verify(coop, STATEMENT, canonical_json(doc), sig) is None
    tampered = json.loads(json.dumps(doc))
    tampered["trees"][0]["share"] = 0.99
    assert verify_with(public, STATEMENT, canonical_json(tampered), sig) is not None
    # a signature is bound to its purpose: a statement is not a checkpoint
    assert verify_with(public, checkpoints.CHECKPOINT_DOMAIN, canonical_json(doc), sig) is not None
    text = json.dumps(doc, ensure_ascii=False)
    for private in ("Nguyễn Văn A", "+84912345678", "079123456789", "coordinates"):
        assert private not in text
    assert doc["lot"]["gtin"] == "08930000000033" and doc["lot"]["code"] == "PK-1"
    farms = {f["code"]: f for f in doc["farms"]}
    assert farms[built["world"].farm["code"]]["display_name"] == "Farm Ea Tu"  # consented
    assert farms["F-OTHER"]["display_name"] is None  # not consented
    assert sum(t["share"] for t in doc["trees"]) == pytest.approx(1.0, abs=1e-8)
    assert {s["step"] for s in doc["steps"]} >= {"drying", "grading", "blending", "packing"}
    assert len(doc["chain"]["events"]) == 9


def test_key_files_are_private(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    coop = built["world"].coop["id"]
    folder = keys.root / str(coop)
    assert (keys.root.stat().st_mode & 0o777) == 0o700
    assert (folder.stat().st_mode & 0o777) == 0o700
    (active,) = [k for k in _index(keys, coop) if k["valid_until"] is None]
    pem = folder / f"{active['key_id']}.pem"
    assert (pem.stat().st_mode & 0o777) == 0o600
    assert b"PRIVATE KEY" in pem.read_bytes()
    assert sorted(p.name for p in folder.glob("*.pem")) == [pem.name]  # the active key only
    # the database holds signatures and public key ids, never private material
    body = pem.read_text().splitlines()[1]
    for table in ("trace_events", "lot_statements", "chain_checkpoints"):
        text = conn.execute(f"select coalesce(string_agg(t::text, ''), '') as x from {table} t")
        dump = text.fetchone()["x"]  # type: ignore[index]
        assert "PRIVATE" not in dump and body not in dump


def test_a_cooperatives_key_cannot_verify_another_cooperatives_statement(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    coop_a, packed = built["world"].coop["id"], built["packed"]["id"]
    other = make_world(conn, keys=keys, trees=1, lon=108.3)
    coop_b = other.coop["id"]
    theirs = lots.build_cherry_lot(
        conn, coop_b, code="B-1", harvest_ids=[insert_harvest(conn, other.trees[0], 5)], keys=keys
    )
    a, b = _statement(conn, packed), _statement(conn, theirs["id"])
    assert a["signature"]["key_id"] != b["signature"]["key_id"]
    public_a = _public(keys, coop_a, a["signature"]["key_id"])
    public_b = _public(keys, coop_b, b["signature"]["key_id"])
    for stmt, own, foreign, coop in (
        (a, public_a, public_b, coop_b),
        (b, public_b, public_a, coop_a),
    ):
        message = canonical_json(stmt["document"])
        assert verify_with(own, STATEMENT, message, stmt["signature"]) is None
        assert verify_with(foreign, STATEMENT, message, stmt["signature"]) is not None
        assert "not one of the cooperative's keys" in str(
            keys.verify(coop, STATEMENT, message, stmt["signature"])
        )
    # cooperative B's key signing A's document does not make it A's statement
    claimed = keys.sign(coop_b, STATEMENT, canonical_json(a["document"]))
    assert keys.verify(coop_a, STATEMENT, canonical_json(a["document"]), claimed) is not None
    assert verify_with(public_a, STATEMENT, canonical_json(a["document"]), claimed) is not None


def test_after_rotation_old_statements_verify_and_new_ones_carry_the_new_key(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    coop, packed = built["world"].coop["id"], built["packed"]["id"]
    before = _statement(conn, packed)
    old = before["signature"]["key_id"]
    folder = keys.root / str(coop)
    assert (folder / f"{old}.pem").exists()
    rotated = keys.rotate(coop)
    assert rotated["retired"] == old and rotated["active"] != old
    assert not (folder / f"{old}.pem").exists()  # nothing can sign with the old key again
    assert (folder / f"{rotated['active']}.pem").exists()
    index = {k["key_id"]: k for k in _index(keys, coop)}
    assert index[old]["valid_until"] is not None and index[rotated["active"]]["valid_until"] is None
    # the older statement still verifies, with the retired key kept in keys.json
    message = canonical_json(before["document"])
    assert verify_with(index[old]["public_key"], STATEMENT, message, before["signature"]) is None
    assert keys.verify(coop, STATEMENT, message, before["signature"]) is None
    # a statement made now carries the new key
    made = processing.record_transformation(
        conn,
        coop,
        step="splitting",
        occurred_at=T0 + timedelta(days=20),
        inputs=[(built["grade_b"]["id"], 1)],
        outputs=[{"code": "GR-1-S16-A", "kg": 1, "kind": "green"}],
        keys=keys,
    )["outputs"][0]
    conn.commit()
    after = _statement(conn, made["id"])
    assert after["signature"]["key_id"] == rotated["active"]
    new_public = index[rotated["active"]]["public_key"]
    assert (
        verify_with(new_public, STATEMENT, canonical_json(after["document"]), after["signature"])
        is None
    )
    assert (
        verify_with(
            index[old]["public_key"],
            STATEMENT,
            canonical_json(after["document"]),
            after["signature"],
        )
        is not None
    )
    assert _statement(conn, packed)["signature"]["key_id"] == old  # not re-signed
    # events and checkpoints signed with either key verify
    assert verification.verify_lot(conn, packed, keys=keys)["ok"] is True
    assert verification.verify_lot(conn, made["id"], keys=keys)["ok"] is True


def test_forged_signatures_are_refused(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    coop, packed = built["world"].coop["id"], built["packed"]["id"]
    stmt = _statement(conn, packed)
    message = canonical_json(stmt["document"])
    public = _public(keys, coop, stmt["signature"]["key_id"])
    assert verify_with(public, STATEMENT, message, stmt["signature"]) is None
    flipped = _flipped(stmt["signature"])
    # a valid signature of the same key, but over another lot's document
    other = _statement(conn, built["grade_b"]["id"])
    assert other["signature"]["key_id"] == stmt["signature"]["key_id"]
    assert (
        verify_with(public, STATEMENT, canonical_json(other["document"]), other["signature"])
        is None
    )
    for forged in (flipped, other["signature"]):
        assert verify_with(public, STATEMENT, message, forged) is not None
        assert keys.verify(coop, STATEMENT, message, forged) is not None
        with conn.transaction(force_rollback=True):
            conn.execute(
                "update lot_statements set signature = %s::jsonb where id = %s",
                (json.dumps(forged), stmt["id"]),
            )
            report = verification.verify_lot(conn, packed, keys=keys)
        assert report["ok"] is False
        assert [(p["kind"], p["problem"], p["record"]) for p in report["problems"]] == [
            ("statement", "signature_invalid", {"type": "lot_statement", "id": str(stmt["id"])})
        ]
    assert verification.verify_lot(conn, packed, keys=keys)["ok"] is True


def test_published_keys_have_their_validity_and_nothing_private(
    conn: psycopg.Connection, keys: KeyRing, settings: Settings
) -> None:
    built = build_chain(conn, keys=keys)
    coop, packed = built["world"].coop["id"], built["packed"]["id"]
    stmt = _statement(conn, packed)
    folder = keys.root / str(coop)
    with TestClient(create_app(settings)) as client:
        first = client.get("/.well-known/coffeetrace-keys")
        assert first.status_code == 200
        pems = [p.read_text() for p in folder.glob("*.pem")]
        keys.rotate(coop)
        second = client.get("/.well-known/coffeetrace-keys")
        pems += [p.read_text() for p in folder.glob("*.pem")]
    for response in (first, second):
        assert "PRIVATE" not in response.text
        for pem in pems:
            for line in pem.splitlines()[1:-1]:  # the base64 body of each private key
                assert line not in response.text
    assert first.json()["algorithm"] == "Ed25519"
    (listed,) = [c for c in first.json()["cooperatives"] if c["id"] == str(coop)]
    assert listed["code"] == built["world"].coop["code"]
    (key,) = listed["keys"]
    assert set(key) == {"key_id", "public_key", "valid_from", "valid_until"}
    assert key["key_id"] == stmt["signature"]["key_id"] and key["valid_until"] is None
    # a buyer verifies the served statement with the published key alone
    message = canonical_json(stmt["document"])
    assert verify_with(key["public_key"], STATEMENT, message, stmt["signature"]) is None
    (after,) = [c for c in second.json()["cooperatives"] if c["id"] == str(coop)]
    retired, active = after["keys"]
    assert retired["key_id"] == key["key_id"] and retired["valid_from"] == key["valid_from"]
    assert retired["valid_until"] is not None and active["valid_until"] is None
    assert active["valid_from"] >= retired["valid_until"]
    assert active["key_id"] != retired["key_id"]
    assert verify_with(retired["public_key"], STATEMENT, message, stmt["signature"]) is None
