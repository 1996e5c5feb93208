"""Writes one prepared batch in one transaction: ledger claim, then COPY of the readings and
harvests of the newly claimed keys only, device status, dead letters.

Readings go in with COPY and no per-reading unique key: the ledger has already decided,
once per reading set, that they are new. This also keeps late data cheap on TimescaleDB
(plain inserts into compressed chunks, no ON CONFLICT against them).

The ledger claim itself is optimistic: a batch's keys are COPYed into the ledger under a
savepoint, and only when its unique key refuses one (a resent set) is the savepoint
rolled back and the batch claimed with `claim_messages`, which tells which keys are new.
The caller says when duplicates are to be expected (the previous batch had some), and
the claim then goes straight to `claim_messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from coffeetrace.ingest.validate import Prepared, Reject
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.ingest", "queries.sql")


@dataclass(frozen=True)
class Written:
    sets: int  # reading sets and harvest events newly stored
    readings: int  # sensor readings + harvest events rows
    duplicates: int  # keys already in the ledger (or twice in this batch)
    dead_letters: int
    statuses: int
    harvests: int = 0  # of `sets`, how many were harvest events
    known_keys: int = 0  # of `duplicates`, how many the ledger already had
    dead_letters_dropped: int = 0  # beyond the per-device hourly cap: counted, no row

    def __add__(self, other: Written) -> Written:
        return Written(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


# column types of copy_readings and copy_ledger, in order
READING_TYPES = ["timestamptz", "text", "uuid", "uuid", "text", "float8"]
LEDGER_TYPES = ["text", "text", "text", "int4"]


def _claim(
    conn: psycopg.Connection[Any], ledger: list[tuple[str, str, str, int]], expect_duplicates: bool
) -> set[tuple[str, str]] | None:
    """Claim the ledger keys; the set of keys newly claimed, or None when all of them were."""
    if not expect_duplicates:
        try:
            with conn.transaction(), conn.cursor().copy(SQL["copy_ledger"]) as copy:
                copy.set_types(LEDGER_TYPES)
                for row in ledger:
                    copy.write_row(row)
            return None
        except psycopg.errors.UniqueViolation:
            pass  # a key seen before: the savepoint is rolled back, claim key by key
    device_ids, msg_ids, kinds, counts = zip(*ledger, strict=True)
    cur = conn.cursor(row_factory=tuple_row).execute(
        SQL["claim_messages"],
        {
            "device_ids": "\n".join(device_ids),
            "msg_ids": "\n".join(msg_ids),
            "kinds": "\n".join(kinds),
            "readings": "\n".join(map(str, counts)),
        },
    )
    return set(cur.fetchall())


def _dead_letters_to_keep(
    conn: psycopg.Connection[Any], rejects: list[Reject], cap: int | None
) -> tuple[list[Reject], list[Reject]]:
    """(kept, dropped): every reject is counted in dead_letter_hours, but per device and
    hour only the first `cap` get a row (None: no cap)."""
    if cap is None:
        return rejects, []
    by_device: dict[str, list[Reject]] = {}
    for r in rejects:
        by_device.setdefault(r.device_id or "", []).append(r)
    ids = sorted(by_device)  # one lock order for every consumer: no deadlocks between them
    rows = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            SQL["count_dead_letters"],
            {
                "device_ids": ids,
                "counts": [len(by_device[d]) for d in ids],
                "reasons": [by_device[d][-1].code for d in ids],
                "cap": cap,
            },
        )
        .fetchall()
    )
    kept: list[Reject] = []
    dropped: list[Reject] = []
    for device_id, share in rows:
        mine = by_device[device_id]
        kept += mine[:share]
        dropped += mine[share:]
    return kept, dropped


def write_batch(
    conn: psycopg.Connection[Any],
    batch: Prepared,
    *,
    expect_duplicates: bool = False,
    dead_letter_cap: int | None = None,
) -> Written:
    """Store `batch` inside one transaction of `conn` (committed on return).

    `batch.rejects` is narrowed to the dead letters that got a row; `batch.dropped` holds
    the reason codes of those beyond `dead_letter_cap` per device and hour."""
    kept: list[Reject] = []
    dropped: list[Reject] = []
    with conn.transaction():
        claimed: set[tuple[str, str]] | None = set()
        if batch.ledger:
            claimed = _claim(conn, batch.ledger, expect_duplicates)
        new_keys = len(batch.ledger) if claimed is None else len(claimed)
        readings = 0
        if new_keys and batch.readings:
            with conn.cursor().copy(SQL["copy_readings"]) as copy:
                copy.set_types(READING_TYPES)
                for key, rows in batch.readings.items():
                    if claimed is None or key in claimed:
                        for row in rows:
                            copy.write_row(row)
                        readings += len(rows)
        harvests = [row for key, row in batch.harvests.items() if claimed is None or key in claimed]
        if harvests:
            with conn.cursor().copy(SQL["copy_harvests"]) as copy:
                for row in harvests:
                    copy.write_row(row)
        if batch.statuses:
            ids = list(batch.statuses)
            values = [batch.statuses[i] for i in ids]
            conn.execute(
                SQL["upsert_device_status"],
                {
                    "device_ids": ids,
                    "online": [v[0] for v in values],
                    "battery": [v[1] for v in values],
                    "firmware": [v[2] for v in values],
                    "updated_at": [v[3] for v in values],
                },
            )
        if batch.rejects:
            kept, dropped = _dead_letters_to_keep(conn, batch.rejects, dead_letter_cap)
            if kept:
                # every text field was made safe when the reject was made (decode.safe_text)
                with conn.cursor().copy(SQL["copy_dead_letters"]) as copy:
                    for r in kept:
                        copy.write_row(
                            (
                                r.topic,
                                r.device_id,
                                r.msg_id,
                                r.reason,
                                r.payload,
                                r.payload_size,
                                r.encoding,
                            )
                        )
    # only once committed: a retried transaction starts again from every reject
    batch.rejects = kept
    batch.dropped = [r.code for r in dropped]
    known = len(batch.ledger) - new_keys
    return Written(
        sets=new_keys,
        readings=readings + len(harvests),
        duplicates=known + batch.in_batch_duplicates,
        dead_letters=len(batch.rejects),
        statuses=len(batch.statuses),
        harvests=len(harvests),
        known_keys=known,
        dead_letters_dropped=len(dropped),
    )
