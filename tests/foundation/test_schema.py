"""migrations/schema.sql describes the schema the numbered migrations build.

One empty database is migrated, schema.sql is loaded into another, and both are dumped
with `pg_dump --schema-only` (normalised the way scripts/update-schema writes it): tables,
columns, types, defaults, nullability, constraints, indexes, views, functions and
triggers must all come out the same. After changing a migration, run scripts/update-schema.
"""

from __future__ import annotations

import difflib
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from coffeetrace.migrate import dump_schema, migrate, timescaledb_loadable

SCHEMA = Path(__file__).resolve().parents[2] / "migrations" / "schema.sql"

pytestmark = pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not on PATH")


@contextmanager
def _empty_database(pg_server) -> Iterator[str]:
    name = f"ct_schema_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield pg_server.url(name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _migrated_dump(pg_server) -> str:
    with _empty_database(pg_server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            if timescaledb_loadable(conn):
                pytest.skip("the server has TimescaleDB; schema.sql describes plain PostgreSQL")
            migrate(conn)
        return dump_schema(url)


def _loaded_dump(pg_server, schema_text: str) -> str:
    with _empty_database(pg_server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema_text)  # type: ignore[call-overload]  # the file under test
        return dump_schema(url)


def _diff(expected: str, actual: str) -> str:
    return "".join(
        difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "migrations", "schema.sql", n=2
        )
    )


@pytest.fixture(scope="module")
def migrated_dump(pg_server) -> str:
    return _migrated_dump(pg_server)


def test_schema_sql_builds_what_the_migrations_build(pg_server, migrated_dump: str) -> None:
    loaded = _loaded_dump(pg_server, SCHEMA.read_text(encoding="utf-8"))
    assert loaded == migrated_dump, (
        "migrations/schema.sql is out of date; run scripts/update-schema\n"
        + _diff(migrated_dump, loaded)
    )


def test_the_comparison_notices_a_missing_column(pg_server, migrated_dump: str) -> None:
    """The check above can fail: drop one column from schema.sql and it differs."""
    text = SCHEMA.read_text(encoding="utf-8")
    broken, n = re.subn(
        r"^    last_used_at timestamp with time zone,\n", "", text, count=1, flags=re.MULTILINE
    )
    assert n == 1, "the probe column is gone from schema.sql; pick another"
    loaded = _loaded_dump(pg_server, broken)
    assert loaded != migrated_dump
    assert "-    last_used_at timestamp with time zone," in _diff(migrated_dump, loaded)
