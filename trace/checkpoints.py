"""Signed checkpoints of a cooperative's chain, in the manner of RFC 9162's signed tree
heads, and the witness that remembers the newest one outside the database.

A checkpoint body is {"type": "coffeetrace.checkpoint", "version": 1, "cooperative_id",
"tree_size", "root_hash" (hex of the Merkle tree over the chain's first tree_size event
hashes, trace/merkle.py), "head_seq", "head_hash", "issued_at"}; its signature is the
cooperative's key over `CHECKPOINT_DOMAIN` + canonical JSON of the body (trace/keys.py).
Anyone who keeps a checkpoint can later ask for a consistency proof to a newer one and
know that the chain they saw was only extended, never rewritten or cut.

The witness is a file beside the cooperative's keys ({keys dir}/{cooperative}/witness.json)
holding the largest checkpoint seen so far. It advances only to a checkpoint whose
signature verifies and which is consistent with it, so deleting checkpoints, events or
lots with psql cannot move it back.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import merkle, merkle_store
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import canonical_json
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "checkpoints.sql")
CHECKPOINT_DOMAIN = "coffeetrace.checkpoint.v1"
WITNESS_FILE = "witness.json"

log = logging.getLogger(__name__)


def issue(conn: DbConn, keys: KeyRing, cooperative_id: UUID) -> Row:
    """Sign and store a checkpoint of the chain as the caller's transaction sees it:
    {"id", "body", "signature"}."""
    head = q.one(conn, SQL["checkpoint_chain_head"], {"cooperative_id": cooperative_id})
    size = head["position"] + 1 if head else 0
    root = merkle_store.root_hash(conn, cooperative_id, size)
    issued_at = datetime.now(UTC)
    body = {
        "type": "coffeetrace.checkpoint",
        "version": 1,
        "cooperative_id": str(cooperative_id),
        "tree_size": size,
        "root_hash": root.hex(),
        "head_seq": head["seq"] if head else None,
        "head_hash": head["hash"] if head else None,
        "issued_at": issued_at.isoformat(timespec="microseconds"),
    }
    signature = keys.sign(cooperative_id, CHECKPOINT_DOMAIN, canonical_json(body))
    row = q.one(
        conn,
        SQL["insert_checkpoint"],
        dict(
            cooperative_id=cooperative_id,
            tree_size=size,
            root_hash=body["root_hash"],
            head_seq=body["head_seq"],
            issued_at=issued_at,
            body=Jsonb(body),
            signature=Jsonb(signature),
        ),
    )
    assert row is not None  # insert ... returning
    log.info("checkpoint_issued cooperative_id=%s tree_size=%s", cooperative_id, size)
    return row


def latest(conn: DbConn, cooperative_id: UUID) -> Row | None:
    return q.one(conn, SQL["latest_checkpoint"], {"cooperative_id": cooperative_id})


def signature_problem(keys: KeyRing, checkpoint: Any) -> str | None:
    """None when `checkpoint` ({"body", "signature"}) is signed by its cooperative's key."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("body"), dict):
        return 'not a checkpoint: expected {"body": {...}, "signature": {...}}'
    body = checkpoint["body"]
    if body.get("type") != "coffeetrace.checkpoint":
        return "not a coffeetrace checkpoint"
    try:
        coop = UUID(str(body.get("cooperative_id")))
    except ValueError:
        return "the checkpoint names no cooperative"
    return keys.verify(coop, CHECKPOINT_DOMAIN, canonical_json(body), checkpoint.get("signature"))


def consistency(conn: DbConn, cooperative_id: UUID, first: Row, second: Row) -> Row:
    """The consistency proof from checkpoint body `first` to `second` (tree_size m <= n):
    {"first": m, "second": n, "proof": [hex]}."""
    m, n = int(first["tree_size"]), int(second["tree_size"])
    proof = merkle_store.consistency_proof(conn, cooperative_id, m, n) if 0 < m < n else []
    return {"first": m, "second": n, "proof": [p.hex() for p in proof]}


def extends(conn: DbConn, cooperative_id: UUID, kept: Row, newer: Row) -> bool:
    """Does checkpoint body `newer` extend `kept` (same chain, only appended to)?"""
    m, n = int(kept["tree_size"]), int(newer["tree_size"])
    if m > n:
        return False
    if m == n:
        return bool(kept["root_hash"] == newer["root_hash"])
    if m == 0:
        return True
    proof = merkle_store.consistency_proof(conn, cooperative_id, m, n)
    return merkle.verify_consistency(
        m, n, bytes.fromhex(kept["root_hash"]), bytes.fromhex(newer["root_hash"]), proof
    )


# --- the witness outside the database ------------------------------------------------
def _witness_path(keys: KeyRing, cooperative_id: UUID) -> Any:
    return keys.root / str(UUID(str(cooperative_id))) / WITNESS_FILE


def witnessed(keys: KeyRing, cooperative_id: UUID) -> Row | None:
    """The largest checkpoint the witness has seen ({"body", "signature"}), or None."""
    try:
        data = json.loads(_witness_path(keys, cooperative_id).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("witness_unreadable cooperative_id=%s", cooperative_id)
        return None
    return data if isinstance(data, dict) else None


def observe(conn: DbConn, keys: KeyRing, cooperative_id: UUID) -> Row | None:
    """Advance the witness to the newest stored checkpoint when it is validly signed and
    consistent with what the witness holds. Call it after the checkpoint's transaction
    committed (a rolled-back checkpoint must never be witnessed). Returns a problem
    {"problem", "detail"} when the stored chain no longer extends the witnessed one."""
    newest = latest(conn, cooperative_id)
    if newest is None or signature_problem(keys, newest) is not None:
        return None
    with keys.locked(cooperative_id):  # two observers never move the witness back
        held = witnessed(keys, cooperative_id)
        if held is not None:
            if int(held["body"]["tree_size"]) >= int(newest["body"]["tree_size"]):
                return None
            if not extends(conn, cooperative_id, held["body"], newest["body"]):
                return {
                    "problem": "checkpoint_inconsistent",
                    "detail": f"the stored checkpoint {newest['id']} does not extend the"
                    f" witnessed one of {held['body']['tree_size']} events",
                }
        path = _witness_path(keys, cooperative_id)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"body": newest["body"], "signature": newest["signature"]}))
        os.replace(tmp, path)
    return None


def history(conn: DbConn, cooperative_id: UUID, *, before: int | None, limit: int) -> list[Row]:
    """Checkpoints newest first, older than id `before` (all when None)."""
    return q.rows(
        conn,
        SQL["checkpoint_history"],
        {"cooperative_id": cooperative_id, "before": before or 2**62, "limit": limit},
    )


def cooperatives_with_chains(conn: DbConn) -> list[UUID]:
    return [r["cooperative_id"] for r in q.rows(conn, SQL["cooperatives_with_events"])]


def due(conn: DbConn) -> list[UUID]:
    """Cooperatives whose chain has events after its newest checkpoint."""
    return [r["cooperative_id"] for r in q.rows(conn, SQL["checkpoints_due"])]
