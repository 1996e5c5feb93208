"""Writes one prepared batch in one transaction: ledger claim, then COPY of the readings and
harvests of the newly claimed keys only, device status, dead letters.

Readings go in with COPY and no per-reading unique key: the ledger has already decided,
once per reading set, that they are new. This also keeps late data cheap on TimescaleDB
(plain inserts into compressed chunks, no ON CONFLICT against them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from coffeetrace.ingest.validate import Prepared
from psycopg.rows import tuple_row

from coffeetrace.sql import load_queries


@dataclass(frozen=True)
class Written:
    sets: int  # reading sets and harvest events newly stored
    readings: int  # sensor readings + harvest events rows
    duplicates: int  # keys already in the ledger (or twice in this batch)
    dead_letters: int
    statuses: int
    harvests: int = 0  # of `sets`, how many were harvest events


# column types of copy_readings, in order
READING_TYPES = ["timestamptz", "text", "uuid", "uuid", "text", "float8"]


def _q(name: str) -> str:
    return load_queries("coffeetrace.ingest")[name]


def write_batch(conn: psycopg.Connection[Any], batch: Prepared) -> Written:
    """Store `batch` inside one transaction of `conn` (committed on return)."""
    with conn.transaction():
        claimed: set[tuple[str, str]] = set()
        if batch.ledger:
            device_ids, msg_ids, kinds, counts = zip(*batch.ledger, strict=True)
            cur = conn.cursor(row_factory=tuple_row).execute(_q("claim_messages"), {
                "device_ids": "\n".join(device_ids), "msg_ids": "\n".join(msg_ids),
                "kinds": "\n".join(kinds), "readings": "\n".join(map(str, counts))})
            claimed = set(cur.fetchall())
        readings = 0
        if claimed and batch.readings:
            with conn.cursor().copy(_q("copy_readings")) as copy:
                copy.set_types(READING_TYPES)
                for key, rows in batch.readings.items():
                    if key in claimed:
                        for row in rows:
                            copy.write_row(row)
                        readings += len(rows)
        harvests = [row for key, row in batch.harvests.items() if key in claimed]
        if harvests:
            with conn.cursor().copy(_q("copy_harvests")) as copy:
                for row in harvests:
                    copy.write_row(row)
        if batch.statuses:
            ids = list(batch.statuses)
            values = [batch.statuses[i] for i in ids]
            conn.execute(_q("upsert_device_status"), {
                "device_ids": ids, "online": [v[0] for v in values],
                "battery": [v[1] for v in values], "firmware": [v[2] for v in values],
                "updated_at": [v[3] for v in values]})
        if batch.rejects:
            with conn.cursor().copy(_q("copy_dead_letters")) as copy:
                for r in batch.rejects:
                    copy.write_row((r.topic, r.device_id, r.msg_id, r.reason.replace("\x00", ""),
                                    r.payload.replace("\x00", "\ufffd"), r.payload_size))
    return Written(sets=len(claimed), readings=readings + len(harvests),
                   duplicates=len(batch.ledger) - len(claimed) + batch.in_batch_duplicates,
                   dead_letters=len(batch.rejects), statuses=len(batch.statuses),
                   harvests=len(harvests))
