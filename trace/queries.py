"""Running this package's named queries (trace/sql/*.sql) with dict rows."""

from __future__ import annotations

from typing import Any, cast

import psycopg

from coffeetrace.sql import load_queries

Row = dict[str, Any]


def sql(file: str, name: str) -> str:
    return load_queries("coffeetrace.trace", f"{file}.sql")[name]


def rows(conn: psycopg.Connection, file: str, name: str,
         params: dict[str, Any] | None = None) -> list[Row]:
    return cast(list[Row], conn.execute(sql(file, name), params or {}).fetchall())  # type: ignore[arg-type]


def one(conn: psycopg.Connection, file: str, name: str,
        params: dict[str, Any] | None = None) -> Row | None:
    return cast(Row | None, conn.execute(sql(file, name), params or {}).fetchone())  # type: ignore[arg-type]


def execute(conn: psycopg.Connection, file: str, name: str,
            params: dict[str, Any] | None = None) -> int:
    """Run a statement that returns no rows; the number of rows it touched."""
    return conn.execute(sql(file, name), params or {}).rowcount  # type: ignore[arg-type]
