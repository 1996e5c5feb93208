"""Running one of this package's named queries (trace/sql/*.sql) with dict rows.

The queries themselves come from each module's own `SQL = load_queries(...)`; these
helpers only run one and type its rows.
"""

from __future__ import annotations

from typing import Any, LiteralString, cast

from coffeetrace.db import DbConn, Row


def rows(conn: DbConn, query: LiteralString, params: dict[str, Any] | None = None) -> list[Row]:
    return cast(list[Row], conn.execute(query, params or {}).fetchall())


def one(conn: DbConn, query: LiteralString, params: dict[str, Any] | None = None) -> Row | None:
    return cast(Row | None, conn.execute(query, params or {}).fetchone())


def execute(conn: DbConn, query: LiteralString, params: dict[str, Any] | None = None) -> int:
    """Run a statement that returns no rows; the number of rows it touched."""
    return conn.execute(query, params or {}).rowcount
