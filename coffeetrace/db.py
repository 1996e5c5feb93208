"""The one place that opens database connections and the connection pool."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from coffeetrace.errors import ConfigError, first_line
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

# Rows as the project reads them: every connection it opens returns dicts (dict_row).
Row = dict[str, Any]
DbConn: TypeAlias = psycopg.Connection[Row]

SQL = load_queries("coffeetrace", "db.sql")

log = logging.getLogger(__name__)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable URL>"
    if "password" in info:
        info["password"] = "***"
    return psycopg.conninfo.make_conninfo("", **info)


def _unreachable(url: str, exc: Exception) -> ConfigError:
    reason = first_line(exc)
    return ConfigError(
        f"cannot connect to PostgreSQL at {redact(url)}: {reason}. "
        "Check COFFEETRACE_DATABASE_URL (leave it empty to use the embedded database).",
        setting="COFFEETRACE_DATABASE_URL",
    )


def connect(
    url: str, *, timeout_s: float = 5.0, autocommit: bool = False
) -> psycopg.Connection[dict[str, Any]]:
    """One connection (dict rows), with an unreachable server turned into a ConfigError."""
    try:
        return psycopg.Connection.connect(
            url, connect_timeout=max(1, int(timeout_s)), autocommit=autocommit, row_factory=dict_row
        )
    except psycopg.OperationalError as exc:
        raise _unreachable(url, exc) from exc


def check_database(url: str, timeout_s: float = 5.0) -> None:
    """Raise ConfigError naming the setting when the database cannot be reached."""
    with connect(url, timeout_s=timeout_s) as conn:
        conn.execute(SQL["check_database"])


def open_pool(
    settings: Settings, url: str | None = None, *, name: str = "coffeetrace"
) -> ConnectionPool[DbConn]:
    """Open and check a pool; the caller closes it (in a lifespan or a `with`)."""
    url = url or settings.effective_database_url()
    check_database(url, settings.db_connect_timeout_s)
    # its connections return dict rows (kwargs below); psycopg_pool cannot infer that
    pool = cast(
        "ConnectionPool[DbConn]",
        ConnectionPool(
            url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            kwargs={"row_factory": dict_row},
            open=False,
            name=name,
            timeout=30,
            # a connection is checked (one empty query) when it leaves the pool: one broken
            # by a database restart is replaced instead of failing the request with it
            check=ConnectionPool.check_connection,
        ),
    )
    try:
        pool.open(wait=True, timeout=settings.db_connect_timeout_s + 5)
    except Exception as exc:
        pool.close()
        raise _unreachable(url, exc) from exc
    return pool


@contextmanager
def transaction(pool: ConnectionPool[DbConn]) -> Iterator[DbConn]:
    """A pooled connection inside one transaction: committed on success, rolled back on error."""
    with pool.connection() as conn, conn.transaction():
        yield conn


def with_database(url: str, name: str) -> str:
    """The same server and credentials as `url`, naming database `name`."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **info)


@contextmanager
def scratch_database(server_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new, migrated database on `server_url`'s server (for benchmarks); dropped
    afterwards unless `keep`."""

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = with_database(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        # Composed, not a named query: a database name is an identifier, and identifiers
        # cannot travel as parameters.
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    try:
        with connect(url, timeout_s=10) as conn:
            migrate(conn)
        yield url
    finally:
        if keep:
            log.info("scratch_database_kept name=%s", name)
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                # composed for the same reason as the create above
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )
