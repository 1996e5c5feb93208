"""Looking lots up: by id, public id, GTIN and batch code, or a CLI reference.

Every function returns the lot dict described in lots.py.
"""

from __future__ import annotations

from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q

SQL = load_queries("coffeetrace.trace", "lot_lookup.sql")


def _lot(conn: DbConn, lot_id: UUID) -> Row:
    row = q.one(conn, SQL["get_lot"], {"id": lot_id})
    if row is None:
        raise NotFound("no such lot", lot_id=str(lot_id))
    return row


def get_lot(conn: DbConn, cooperative_id: UUID, lot_id: UUID) -> Row:
    """The lot dict; NotFound unless the lot belongs to the cooperative."""
    row = q.one(conn, SQL["get_lot"], {"id": lot_id})
    if row is None or row["cooperative_id"] != cooperative_id:
        raise NotFound("no such lot in this cooperative", lot_id=str(lot_id))
    return row


def lot_by_id(conn: DbConn, lot_id: UUID) -> Row:
    """The lot dict of any cooperative (for public pages and the CLI); NotFound otherwise."""
    return _lot(conn, lot_id)


def lot_by_public_id(conn: DbConn, public_id: str) -> Row | None:
    """The lot dict for a public id (any cooperative: public ids are unguessable), or None."""
    row = q.one(conn, SQL["lot_by_public_id"], {"public_id": public_id})
    return _lot(conn, row["id"]) if row else None


def lot_by_gtin_and_code(conn: DbConn, gtin: str, code: str) -> Row | None:
    """The lot dict of the lot with batch `code` whose product has GTIN-14 `gtin`, or None."""
    row = q.one(conn, SQL["lot_by_gtin_and_code"], {"gtin": gtin, "code": code})
    return _lot(conn, row["id"]) if row else None


def find_lot(conn: DbConn, ref: str, *, cooperative_code: str | None = None) -> Row:
    """Resolve a CLI reference: a lot public id or a lot code (with cooperative_code when
    two cooperatives use the code). NotFound or Conflict (ambiguous) otherwise."""
    if cooperative_code is None:
        lot = lot_by_public_id(conn, ref)
        if lot is not None:
            return lot
    found = q.rows(conn, SQL["lots_by_code"], {"code": ref, "cooperative_code": cooperative_code})
    if not found:
        raise NotFound(f"no lot with public id or code {ref!r}", lot=ref)
    if len(found) > 1:
        coops = ", ".join(sorted(r["cooperative_code"] for r in found))
        raise Conflict(
            f"lot code {ref!r} is used by several cooperatives ({coops}): name one with --coop",
            lot=ref,
        )
    return _lot(conn, found[0]["id"])
