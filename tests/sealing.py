"""Harvests that tests insert with SQL, sealed the way ingest seals what it stores (one
'ingest_batch' chain event holding their leaves: trace/batches.py), so that they verify.

The builders seal with the running test's key ring (the `keys` fixture, which the
autouse fixture `_sealing_keys` of tests/conftest.py hands over here) unless given one.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import psycopg

from coffeetrace.trace.batches import seal_harvests
from coffeetrace.trace.keys import KeyRing

_current: KeyRing | None = None


def use_keys(keys: KeyRing | None) -> None:
    global _current
    _current = keys


def current_keys() -> KeyRing:
    if _current is None:
        raise RuntimeError("no key ring to seal harvests with: pass keys=")
    return _current


def seal(
    conn: psycopg.Connection, harvest_ids: Iterable[UUID], keys: KeyRing | None = None
) -> None:
    """Seal the harvests in one batch per cooperative, in the caller's transaction."""
    seal_harvests(conn, keys or current_keys(), list(harvest_ids))
