"""Cached registry lookups of the consumer: device -> cooperative, plot, tree binding, and
tree tag -> tree within a cooperative. A miss (or an entry older than the TTL) reads the
database; unknown names are remembered briefly too, so a misconfigured device flooding
the broker costs one query per TTL, not one per message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.ingest", "queries.sql")


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    cooperative_id: UUID
    kind: str
    plot_id: UUID | None  # the plot it reports for: its own, or its tree's
    farm_id: UUID | None
    tree_id: UUID | None
    active: bool
    registered_at: datetime


@dataclass(frozen=True)
class TreeInfo:
    id: UUID
    plot_id: UUID
    farm_id: UUID


# Entries kept per table of the cache. Tree tags come from payloads, so a device sending
# random tags would otherwise grow it without end (each unknown tag is remembered as
# missing); past this size the cache starts afresh, which costs only re-reads.
MAX_ENTRIES = 200_000


class DeviceCache:
    def __init__(
        self, ttl_s: float = 60.0, missing_ttl_s: float = 5.0, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.ttl_s = ttl_s
        self.missing_ttl_s = missing_ttl_s
        self.max_entries = max_entries
        self._devices: dict[str, tuple[float, DeviceInfo | None]] = {}
        self._trees: dict[tuple[UUID, str], tuple[float, TreeInfo | None]] = {}
        self.queries = 0  # database round trips, for tests and logs

    def _fresh(self, entry: tuple[float, object] | None, now: float) -> bool:
        if entry is None:
            return False
        ttl = self.ttl_s if entry[1] is not None else self.missing_ttl_s
        return now - entry[0] < ttl

    def load_devices(self, conn: psycopg.Connection[Any], ids: Iterable[str]) -> None:
        """Read every device of `ids` that is not cached (one query)."""
        now = time.monotonic()
        wanted = {i for i in ids if not self._fresh(self._devices.get(i), now)}
        if not wanted:
            return
        if len(self._devices) + len(wanted) > self.max_entries:
            self._devices.clear()
            wanted = set(ids)  # the batch's own devices are read again too
        self.queries += 1
        rows = conn.execute(SQL["devices_by_id"], {"ids": list(wanted)}).fetchall()
        for row in rows:
            info = DeviceInfo(
                id=row["id"],
                cooperative_id=row["cooperative_id"],
                kind=row["kind"],
                plot_id=row["plot_id"],
                farm_id=row["farm_id"],
                tree_id=row["tree_id"],
                active=row["active"],
                registered_at=row["registered_at"],
            )
            self._devices[info.id] = (now, info)
            wanted.discard(info.id)
        for missing in wanted:
            self._devices[missing] = (now, None)

    def device(self, device_id: str) -> DeviceInfo | None:
        entry = self._devices.get(device_id)
        return entry[1] if entry else None

    def load_trees(self, conn: psycopg.Connection[Any], wanted: Iterable[tuple[UUID, str]]) -> None:
        """Read every (cooperative, tag) of `wanted` not cached (one query per cooperative)."""
        now = time.monotonic()
        wanted = list(wanted)
        by_coop: dict[UUID, set[str]] = {}
        for coop, tag in wanted:
            if not self._fresh(self._trees.get((coop, tag)), now):
                by_coop.setdefault(coop, set()).add(tag)
        if len(self._trees) + sum(map(len, by_coop.values())) > self.max_entries:
            self._trees.clear()
            by_coop = {}
            for coop, tag in wanted:  # the batch's own tags are read again too
                by_coop.setdefault(coop, set()).add(tag)
        for coop, tags in by_coop.items():
            self.queries += 1
            rows = conn.execute(
                SQL["trees_by_tag"], {"cooperative_id": coop, "tags": list(tags)}
            ).fetchall()
            for row in rows:
                self._trees[(coop, row["tag_code"])] = (
                    now,
                    TreeInfo(id=row["id"], plot_id=row["plot_id"], farm_id=row["farm_id"]),
                )
                tags.discard(row["tag_code"])
            for tag in tags:
                self._trees[(coop, tag)] = (now, None)

    def tree(self, cooperative_id: UUID, tag: str) -> TreeInfo | None:
        entry = self._trees.get((cooperative_id, tag))
        return entry[1] if entry else None

    def clear(self) -> None:
        self._devices.clear()
        self._trees.clear()
