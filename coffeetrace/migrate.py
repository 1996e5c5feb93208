"""Apply the numbered plain-SQL migrations in `migrations/`, each once, recorded in a table.

A migration whose first lines contain `-- requires: timescaledb` is applied only when
the TimescaleDB extension can be loaded; it is not recorded otherwise, so it is applied
later when TimescaleDB arrives. Every migration runs in its own transaction, under an
advisory lock so that two processes starting together do not race.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x636F_6666  # "coff": any constant shared by all coffeetrace processes


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def requires_timescaledb(self) -> bool:
        head = "\n".join(self.sql.splitlines()[:5])
        return "-- requires: timescaledb" in head


def available_migrations() -> list[Migration]:
    found = []
    for entry in files("coffeetrace.migrations").iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(m.group(1), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def timescaledb_loadable(conn: psycopg.Connection[Any]) -> bool:
    """True when the extension is installed and preloaded, so CREATE EXTENSION works."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "select exists(select 1 from pg_available_extensions where name = 'timescaledb'),"
        " current_setting('shared_preload_libraries')"
    ).fetchone()
    assert row is not None
    avail, preload = row
    return bool(avail) and "timescaledb" in (preload or "")


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply pending migrations; returns the versions applied now. Safe to run twice."""
    conn.autocommit = True
    conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            "create table if not exists schema_migrations ("
            " version text primary key, name text not null, checksum text not null,"
            " applied_at timestamptz not null default now())"
        )
        rows = conn.execute("select version, checksum from schema_migrations").fetchall()
        done = {_get(r, "version"): _get(r, "checksum") for r in rows}
        tsdb = timescaledb_loadable(conn)
        applied = []
        for mig in available_migrations():
            if mig.version in done:
                if done[mig.version] != mig.checksum:
                    log.warning("migration_changed_after_apply version=%s", mig.version)
                continue
            if mig.requires_timescaledb and not tsdb:
                continue
            with conn.transaction():
                conn.execute(mig.sql)  # type: ignore[arg-type]  # trusted file shipped with us
                conn.execute(
                    "insert into schema_migrations (version, name, checksum) values (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
            log.info("migration_applied version=%s name=%s", mig.version, mig.name)
            applied.append(mig.version)
        return applied
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _get(row: object, key: str) -> object:
    return row[key] if isinstance(row, dict) else row[0 if key == "version" else 1]  # type: ignore[index]
