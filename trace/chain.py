"""The per-cooperative hash chain of trace events: the hash rule and appending.

Each event's hash is SHA-256 (hex) over the canonical JSON (sorted keys, no spaces,
UTF-8) of {seq, cooperative_id, kind, lot_ids, occurred_at, payload, prev_hash};
prev_hash is the hash of the cooperative's previous event (GENESIS for the first).
Checking lots and chains against it is verification.py's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import canonical_json, iso_utc, jsonable

SQL = load_queries("coffeetrace.trace", "chain.sql")

GENESIS = "0" * 64
log = logging.getLogger(__name__)


def event_hash(
    *,
    seq: int,
    cooperative_id: UUID | str,
    kind: str,
    lot_ids: Sequence[UUID | str],
    occurred_at: datetime,
    payload: Any,
    prev_hash: str,
) -> str:
    """SHA-256 hex of the event's canonical JSON."""
    body = {
        "seq": int(seq),
        "cooperative_id": str(cooperative_id),
        "kind": kind,
        "lot_ids": [str(x) for x in lot_ids],
        "occurred_at": iso_utc(occurred_at),
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def append_event(
    conn: DbConn,
    cooperative_id: UUID,
    kind: str,
    lot_ids: Sequence[UUID],
    occurred_at: datetime,
    payload: dict[str, Any],
) -> Row:
    """Append an event to the cooperative's chain; returns the stored row
    {"seq", "cooperative_id", "kind", "lot_ids", "occurred_at", "recorded_at", "payload",
    "prev_hash", "hash"}. Serialised per cooperative by an advisory lock."""
    # Round-trip through JSON first, so the hash covers exactly what jsonb gives back.
    stored_payload = json.loads(canonical_json(jsonable(payload)))
    q.one(conn, SQL["lock_chain"], {"cooperative_id": str(cooperative_id)})
    head = q.one(conn, SQL["chain_head"], {"cooperative_id": cooperative_id})
    prev_hash = head["hash"] if head else GENESIS
    next_seq = q.one(conn, SQL["next_seq"], {})
    assert next_seq is not None  # an aggregate: always one row
    seq = next_seq["seq"]
    digest = event_hash(
        seq=seq,
        cooperative_id=cooperative_id,
        kind=kind,
        lot_ids=lot_ids,
        occurred_at=occurred_at,
        payload=stored_payload,
        prev_hash=prev_hash,
    )
    row = q.one(
        conn,
        SQL["insert_event"],
        dict(
            seq=seq,
            cooperative_id=cooperative_id,
            kind=kind,
            lot_ids=list(lot_ids),
            occurred_at=occurred_at,
            payload=Jsonb(stored_payload),
            prev_hash=prev_hash,
            hash=digest,
        ),
    )
    log.debug("trace_event_appended seq=%s kind=%s", seq, kind)
    assert row is not None  # insert ... returning
    return row
