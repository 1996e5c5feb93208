"""The per-cooperative hash chain of trace events: the hash rule and appending.

Each event's hash is SHA-256 (hex) over the canonical JSON (sorted keys, no spaces,
UTF-8) of {seq, cooperative_id, kind, lot_ids, occurred_at, payload, prev_hash};
prev_hash is the hash of the cooperative's previous event (GENESIS for the first).
The writer signs each event's hash with the cooperative's active key as it appends it
(`EVENT_DOMAIN`, trace/keys.py), and adds the event as the next leaf of the chain's Merkle
tree (trace/merkle_store.py), so that checkpoints can prove what the chain held.
Checking lots and chains against it is verification.py's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import merkle_store
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import canonical_json, iso_utc, native_canonical_json
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "chain.sql")

GENESIS = "0" * 64
EVENT_DOMAIN = "coffeetrace.event.v1"  # what an event signature signs: this, then the hash
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
    payload_json: str | None = None,
) -> str:
    """SHA-256 hex of the event's canonical JSON. `payload` must be JSON-native (as jsonb
    gives it back); `payload_json`, when the caller has it, is its canonical text."""
    # The body's canonical JSON is written out in its sorted key order around the payload's
    # own canonical text: byte for byte what canonical_json(body) gives (tests/trace/
    # test_chain_hash.py), without serialising a large payload twice.
    text = payload_json if payload_json is not None else native_canonical_json(payload)
    c = native_canonical_json
    body = (
        f'{{"cooperative_id":{c(str(cooperative_id))},"kind":{c(kind)},'
        f'"lot_ids":{c([str(x) for x in lot_ids])},"occurred_at":{c(iso_utc(occurred_at))},'
        f'"payload":{text},"prev_hash":{c(prev_hash)},"seq":{int(seq)}}}'
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def lock_chain(conn: DbConn, cooperative_id: UUID) -> None:
    """Take the cooperative's chain lock until the transaction ends (one appender)."""
    q.one(conn, SQL["lock_chain"], {"cooperative_id": str(cooperative_id)})


def events_of_kind(conn: DbConn, cooperative_id: UUID, kind: str) -> list[Row]:
    """The organisation's events of `kind`, oldest first: {seq, cooperative_id, kind,
    payload}. Their hashes and signatures are verification's to check."""
    return q.rows(conn, SQL["events_of_kind"], {"cooperative_id": cooperative_id, "kind": kind})


def append_event(
    conn: DbConn,
    cooperative_id: UUID,
    kind: str,
    lot_ids: Sequence[UUID],
    occurred_at: datetime,
    payload: dict[str, Any],
    *,
    keys: KeyRing,
    payload_json: str | None = None,
) -> Row:
    """Append an event to the cooperative's chain, signed with its active key; returns the
    stored row {"seq", "cooperative_id", "kind", "lot_ids", "occurred_at", "recorded_at",
    "payload" (the payload as given, not read back), "prev_hash", "hash", "position",
    "signature"}. Serialised per cooperative by an advisory lock. `payload_json`: the
    payload's canonical text, when the caller made it (jsonutil.canonical_json_str_keys)."""
    # The payload's canonical text, computed once: what the hash covers and what is stored.
    # canonical_json writes numbers as jsonb gives them back (jsonutil.jsonb_float), so the
    # stored event hashes to the same digest when read again.
    if payload_json is None:
        payload_json = canonical_json(payload).decode("utf-8")
    lock_chain(conn, cooperative_id)
    head = q.one(conn, SQL["chain_head"], {"cooperative_id": cooperative_id})
    prev_hash = head["hash"] if head else GENESIS
    position = head["position"] + 1 if head else 0
    next_seq = q.one(conn, SQL["next_seq"], {})
    assert next_seq is not None  # an aggregate: always one row
    seq = next_seq["seq"]
    digest = event_hash(
        seq=seq,
        cooperative_id=cooperative_id,
        kind=kind,
        lot_ids=lot_ids,
        occurred_at=occurred_at,
        payload=None,
        prev_hash=prev_hash,
        payload_json=payload_json,
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
            payload=Jsonb(None, dumps=lambda _obj: payload_json),
            prev_hash=prev_hash,
            hash=digest,
            position=position,
            signature=Jsonb(keys.sign(cooperative_id, EVENT_DOMAIN, digest.encode())),
        ),
    )
    merkle_store.append_leaf(conn, cooperative_id, position, digest)
    log.debug("trace_event_appended seq=%s kind=%s", seq, kind)
    assert row is not None  # insert ... returning
    # not read back: a registry event's payload is megabytes of JSON to parse again
    return {**row, "payload": payload}
