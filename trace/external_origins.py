"""The external lots behind a traced lot, each as its own share (for genealogy.py).

An external lot (external_lots.py) is fed by no harvest: the trees' shares of a lot that
took some of it sum to less than 1, and the rest is the external lots' shares, which this
module reads (one indexed lookup per lot made by no transformation). Kept apart from
external_lots.py, which signs and so imports what itself imports genealogy.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q

SQL = load_queries("coffeetrace.trace", "external_lots.sql")


def of_lots(conn: DbConn, leaves: Sequence[Row], total: Decimal) -> list[Row]:
    """The external lots among `leaves` (upstream lots made by no transformation, with
    their "lot_id" and "share" of the traced lot): [{"lot_id", "public_id", "code", "kind",
    "cooperative_id", "origin_country", "producer", "supplier", "documents", "received_at",
    "share": float, "kg": float (share x `total`)}], largest share first."""
    if not leaves:
        return []
    found = q.rows(
        conn,
        SQL["external_shares"],
        {"lot_ids": [r["lot_id"] for r in leaves], "fracs": [r["share"] for r in leaves]},
    )
    return [{**r, "share": float(r["share"]), "kg": float(r["share"] * total)} for r in found]
