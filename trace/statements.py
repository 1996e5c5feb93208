"""A lot's signed statement: made by the writer when the lot's history moves, stored, and
served as it was signed.

With each statement the writer stores the lot's public page data (page_snapshots.py).

The statement is the provenance document (provenance.py) signed with the cooperative's
active key over `STATEMENT_DOMAIN` + its canonical JSON, together with the checkpoint of the
chain issued in the same transaction (checkpoints.py). Read paths (the page, the public
verify, exports) take the newest stored statement and never sign; verification rebuilds the
document from the rows and names every field where the two differ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import checkpoints, merkle_store, page_snapshots, provenance
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import canonical_json
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "statements.sql")
STATEMENT_DOMAIN = "coffeetrace.provenance.v1"
MAX_DIFFERENCES = 20  # named per statement; more are counted, not listed

log = logging.getLogger(__name__)


def refresh(conn: DbConn, keys: KeyRing, cooperative_id: UUID, lot_ids: Sequence[UUID]) -> Row:
    """Issue a checkpoint of the cooperative's chain and sign and store the statement of
    each lot, in the caller's transaction. Returns the checkpoint {"id", "body", "signature"}."""
    checkpoint = checkpoints.issue(conn, keys, cooperative_id)
    for lot_id in lot_ids:
        doc = provenance.document(conn, lot_id)
        signature = keys.sign(cooperative_id, STATEMENT_DOMAIN, canonical_json(doc))
        row = q.one(
            conn,
            SQL["insert_statement"],
            dict(
                lot_id=lot_id,
                cooperative_id=cooperative_id,
                chain_seq=doc["chain"]["head_seq"] or 0,
                document=Jsonb(doc),
                signature=Jsonb(signature),
                checkpoint_id=checkpoint["id"],
            ),
        )
        # what the public page shows, stored with the statement it shows (issue 18)
        statement_id = row["id"] if row else None
        page_snapshots.store(conn, keys, lot_id, cooperative_id, statement_id, doc, signature)
    log.debug("statements_signed cooperative_id=%s lots=%s", cooperative_id, len(lot_ids))
    return checkpoint


def newest(conn: DbConn, lot_id: UUID) -> Row | None:
    """The lot's newest stored statement row, or None."""
    return q.one(conn, SQL["newest_statement"], {"lot_id": lot_id})


def served(conn: DbConn, lot_id: UUID) -> Row | None:
    """What read paths serve: {"document", "signature", "checkpoint": {"body",
    "signature"} | None, "inclusion": [{"seq", "position", "hash", "proof": [hex]}]}, the
    inclusion proofs of the document's events in that checkpoint (the newest one)."""
    stmt = newest(conn, lot_id)
    if stmt is None:
        return None
    coop = stmt["cooperative_id"]
    cp = checkpoints.latest(conn, coop)
    inclusion: list[Row] = []
    if cp is not None:
        size = int(cp["body"]["tree_size"])
        seqs = [e["seq"] for e in stmt["document"].get("chain", {}).get("events", [])]
        for ev in q.rows(conn, SQL["positions_of_events"], {"cooperative_id": coop, "seqs": seqs}):
            if ev["position"] < size:
                proof = merkle_store.inclusion_proof(conn, coop, ev["position"], size)
                inclusion.append(
                    {
                        "seq": ev["seq"],
                        "position": ev["position"],
                        "hash": ev["hash"],
                        "proof": [p.hex() for p in proof],
                    }
                )
    return {
        "document": stmt["document"],
        "signature": stmt["signature"],
        "checkpoint": {"id": cp["id"], "body": cp["body"], "signature": cp["signature"]}
        if cp
        else None,
        "inclusion": inclusion,
    }


def differences(signed: Any, now: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as 'path: signed -> now' sentences."""
    if isinstance(signed, dict) and isinstance(now, dict):
        out: list[str] = []
        for key in sorted(set(signed) | set(now)):
            out += differences(signed.get(key), now.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(signed, list) and isinstance(now, list):
        out = []
        for i in range(max(len(signed), len(now))):
            a = signed[i] if i < len(signed) else "(absent)"
            b = now[i] if i < len(now) else "(absent)"
            out += differences(a, b, f"{path}[{i}]")
        return out
    if signed == now:
        return []
    return [f"{path}: signed {_short(signed)} but the store now says {_short(now)}"]


def _short(value: Any) -> str:
    text = canonical_json(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def check(keys: KeyRing, stmt: Row | None, rebuilt: Row, lot_code: str) -> list[Row]:
    """Problems of a lot's stored statement against the document rebuilt from the rows."""

    def problem(kind: str, detail: str) -> Row:
        return {
            "seq": stmt["chain_seq"] if stmt else None,
            "kind": "statement",
            "problem": kind,
            "detail": detail,
            "record": {"type": "lot_statement", "id": str(stmt["id"]) if stmt else None},
        }

    if stmt is None:
        return [problem("missing_statement", f"lot {lot_code} has no signed statement")]
    reason = keys.verify(
        stmt["cooperative_id"],
        STATEMENT_DOMAIN,
        canonical_json(stmt["document"]),
        stmt["signature"],
    )
    problems = []
    if reason is not None:
        problems.append(
            problem("signature_invalid", f"the signed statement of lot {lot_code}: {reason}")
        )
    diffs = differences(stmt["document"], rebuilt)
    if diffs:
        named = "; ".join(diffs[:MAX_DIFFERENCES])
        more = f" (and {len(diffs) - MAX_DIFFERENCES} more)" if len(diffs) > MAX_DIFFERENCES else ""
        problems.append(
            problem(
                "row_mismatch",
                f"lot {lot_code} no longer says what its signed statement said: {named}{more}",
            )
        )
    return problems
