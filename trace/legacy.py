"""Bringing a chain written before signatures under them, once, by its operator.

`sign_legacy` first checks that the whole chain still holds together (hashes and links),
then signs every event that has no signature, signs a statement for every lot without one
and issues a checkpoint. What it signs is what the database holds at that moment: run it
right after upgrading, and keep (or publish) the checkpoint it issues.
"""

from __future__ import annotations

from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict
from coffeetrace.sql import load_queries
from coffeetrace.trace import merkle_store, statements
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import EVENT_DOMAIN, lock_chain
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain

SQL = load_queries("coffeetrace.trace", "legacy.sql")
LINK_PROBLEMS = ("hash_mismatch", "chain_broken")


def sign_legacy(conn: DbConn, keys: KeyRing, cooperative_id: UUID) -> Row:
    """{"events_signed", "statements", "checkpoint": {"id", "body", "signature"}}.
    Conflict when the chain's hashes or links are already broken (nothing is signed)."""
    lock_chain(conn, cooperative_id)
    merkle_store.catch_up(conn, cooperative_id)
    report = verify_chain(conn, cooperative_id, keys=keys)
    broken = [p for p in report["problems"] if p["problem"] in LINK_PROBLEMS]
    if broken:
        raise Conflict(
            f"the chain is already broken ({len(broken)} problems, first: {broken[0]['detail']});"
            " nothing was signed",
            problems=broken[:20],
        )
    signed = 0
    for row in q.rows(conn, SQL["unsigned_events"], {"cooperative_id": cooperative_id}):
        signature = keys.sign(cooperative_id, EVENT_DOMAIN, row["hash"].encode())
        signed += q.execute(
            conn, SQL["sign_event"], {"seq": row["seq"], "signature": Jsonb(signature)}
        )
    lots = [
        r["id"]
        for r in q.rows(conn, SQL["lots_without_statement"], {"cooperative_id": cooperative_id})
    ]
    checkpoint = statements.refresh(conn, keys, cooperative_id, lots)
    return {"events_signed": signed, "statements": len(lots), "checkpoint": checkpoint}
