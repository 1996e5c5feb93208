"""Writes one prepared batch in one transaction: ledger claim, then COPY of the readings and
harvests of the newly claimed keys only, device status, dead letters.

Readings go in with COPY and no per-reading unique key: the ledger has already decided,
once per reading set, that they are new. This also keeps late data cheap on TimescaleDB
(plain inserts into compressed chunks, no ON CONFLICT against them).

The ledger claim itself is optimistic: a batch's keys are COPYed into the ledger under a
savepoint (runs of consecutive seqs as one row each, ingest/ledger.py, migration 0056),
and only when a key refuses one (a resent set) is the savepoint rolled back and the
batch claimed key by key with `claim_seqs` and `claim_text_keys`, which tell which keys
are new.
The caller says when duplicates are to be expected (the previous batch had some), and
the claim then goes straight to the key-by-key claim.

Evidence (trace/batches.py, migration 0043): in the same transaction, for each
cooperative whose records the batch wrote, one 'ingest_batch' chain event holding the
Merkle root over those records' leaves (computed in the worker's prepare stage,
trace/records.py), and its ingest_batches row; harvest rows are COPYed with their place
in it (batch_seq, batch_index). Only records written count: keys the ledger knew, in-batch
duplicates and dead letters have no leaf. The events are appended after the readings'
COPY: appending takes the cooperative's chain lock, held until the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import tuple_row

from coffeetrace.ingest.copyrows import SIGNATURE, TRAILER
from coffeetrace.ingest.ledger import LedgerRows, ledger_rows
from coffeetrace.ingest.validate import Prepared, Reject
from coffeetrace.sql import load_queries
from coffeetrace.trace.batches import BatchRecords, batch_root, record_batch
from coffeetrace.trace.keys import KeyRing

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
    batch_events: int = 0  # ingest_batch chain events appended (one per cooperative)

    def __add__(self, other: Written) -> Written:
        return Written(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


class EvidenceError(Exception):
    """The batch's chain events could not be written (keys directory, chain state, the
    database): never the fault of a message, so the worker retries the batch and
    acknowledges nothing, instead of splitting it to find a bad message."""


# column types of copy_readings (whose rows copyrows.py encodes itself; the bench's raw
# COPY ceiling uses these), of copy_seq_ranges and of copy_text_keys, in order
READING_TYPES = ["timestamptz", "text", "uuid", "uuid", "text", "float8"]
SEQ_RANGE_TYPES = ["text", "int8", "int8", "text", "int4[]"]
TEXT_KEY_TYPES = ["text", "text", "text", "int4"]


def _copy_keys(conn: psycopg.Connection[Any], rows: LedgerRows) -> None:
    cur = conn.cursor()
    if rows.runs:
        with cur.copy(SQL["copy_seq_ranges"]) as copy:
            copy.set_types(SEQ_RANGE_TYPES)
            for run in rows.runs:
                copy.write_row((run.device_id, run.first, run.last, run.kind, run.readings))
    if rows.text_keys:
        with cur.copy(SQL["copy_text_keys"]) as copy:
            copy.set_types(TEXT_KEY_TYPES)
            for row in rows.text_keys:
                copy.write_row(row)


def _claim(
    conn: psycopg.Connection[Any], rows: LedgerRows, expect_duplicates: bool
) -> set[tuple[str, str]] | None:
    """Claim the ledger keys; the set of keys newly claimed, or None when all of them were."""
    if not expect_duplicates:
        try:
            with conn.transaction():
                _copy_keys(conn, rows)
            return None
        except (psycopg.errors.UniqueViolation, psycopg.errors.ExclusionViolation):
            pass  # a key seen before: the savepoint is rolled back, claim key by key
    claimed: set[tuple[str, str]] = set()
    cur = conn.cursor(row_factory=tuple_row)
    if rows.seqs:
        device_ids, seqs, kinds, counts = zip(*rows.seqs, strict=True)
        cur.execute(
            SQL["claim_seqs"],
            {
                "device_ids": "\n".join(device_ids),
                "seqs": "\n".join(map(str, seqs)),
                "kinds": "\n".join(kinds),
                "readings": "\n".join(map(str, counts)),
            },
        )
        claimed.update((device_id, str(seq)) for device_id, seq in cur.fetchall())
    if rows.text_keys:
        device_ids, msg_ids, kinds, counts = zip(*rows.text_keys, strict=True)
        cur.execute(
            SQL["claim_text_keys"],
            {
                "device_ids": "\n".join(device_ids),
                "msg_ids": "\n".join(msg_ids),
                "kinds": "\n".join(kinds),
                "readings": "\n".join(map(str, counts)),
            },
        )
        claimed.update(cur.fetchall())
    return claimed


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


def _group_evidence(
    batch: Prepared, claimed: set[tuple[str, str]] | None
) -> tuple[dict[UUID, BatchRecords], dict[tuple[str, str], tuple[UUID, int]]]:
    """The records of `batch` written when the ledger claimed `claimed` (None: all of
    them), by cooperative, in ledger order, and each written harvest's (cooperative, leaf
    index)."""
    groups: dict[UUID, BatchRecords] = {}
    harvest_at: dict[tuple[str, str], tuple[UUID, int]] = {}
    # the usual batch: every record new, one cooperative
    if claimed is None and batch.evidence and len(batch.cooperatives) == 1:
        (coop,) = batch.cooperatives
        groups[coop] = BatchRecords(
            device_ids=[e[0] for e in batch.ledger],
            msg_ids=[e[1] for e in batch.ledger],
            kinds=[e[2] for e in batch.ledger],
            times=[e[1] for e in batch.evidence],
            leaves=[e[2] for e in batch.evidence],
        )
        if batch.harvests:
            harvest_at = {
                (e[0], e[1]): (coop, i) for i, e in enumerate(batch.ledger) if e[2] == "harvest"
            }
        return groups, harvest_at
    for (device_id, msg_id, kind, _n), (coop, ts, leaf) in zip(
        batch.ledger, batch.evidence, strict=True
    ):
        if claimed is not None and (device_id, msg_id) not in claimed:
            continue
        records = groups.get(coop)
        if records is None:
            records = groups[coop] = BatchRecords()
        if kind == "harvest":
            harvest_at[(device_id, msg_id)] = (coop, len(records.leaves))
        records.device_ids.append(device_id)
        records.msg_ids.append(msg_id)
        records.kinds.append(kind)
        records.times.append(ts)
        records.leaves.append(leaf)
    return groups, harvest_at


def precompute_evidence(batch: Prepared) -> None:
    """Group `batch`'s records and compute their Merkle roots as if every key is new (the
    usual batch), and its ledger rows, ahead of `write_batch`. The worker calls this in its
    prepare stage, so that the write stage, whose round trips to PostgreSQL are the
    pipeline's critical path, does not also hash thousands of leaves or sort the keys;
    `write_batch` uses the grouping only when the ledger claimed every key, and groups
    again otherwise."""
    groups, harvest_at = _group_evidence(batch, None)
    for records in groups.values():
        records.root = batch_root(records.leaves)
    batch.all_new_evidence = (groups, harvest_at)
    # sorting the keys into runs and joining the rows are Python work too: here, not in
    # the write stage
    batch.ledger_rows = ledger_rows(batch.ledger)
    if batch.readings:
        batch.all_rows = (
            b"".join([SIGNATURE, *[rows for rows, _ in batch.readings.values()], TRAILER]),
            sum([n for _, n in batch.readings.values()]),
        )


def _evidence(
    batch: Prepared, claimed: set[tuple[str, str]] | None
) -> tuple[dict[UUID, BatchRecords], dict[tuple[str, str], tuple[UUID, int]]]:
    if claimed is None and batch.all_new_evidence is not None:
        return batch.all_new_evidence
    return _group_evidence(batch, claimed)


def write_batch(
    conn: psycopg.Connection[Any],
    batch: Prepared,
    *,
    keys: KeyRing,
    expect_duplicates: bool = False,
    dead_letter_cap: int | None = None,
) -> Written:
    """Store `batch` inside one transaction of `conn` (a connection with dict rows;
    committed on return), with its evidence: one chain event per cooperative, signed with
    that cooperative's key from `keys`.

    `batch.rejects` is narrowed to the dead letters that got a row; `batch.dropped` holds
    the reason codes of those beyond `dead_letter_cap` per device and hour."""
    kept: list[Reject] = []
    dropped: list[Reject] = []
    events = 0
    with conn.transaction():
        claimed: set[tuple[str, str]] | None = set()
        if batch.ledger:
            rows = batch.ledger_rows or ledger_rows(batch.ledger)
            claimed = _claim(conn, rows, expect_duplicates)
        new_keys = len(batch.ledger) if claimed is None else len(claimed)
        readings = 0
        if new_keys and batch.readings:
            # each set's rows come ready in binary COPY format (copyrows.py): one write of
            # the whole batch, not one write_row per reading
            data = b""
            if claimed is None and batch.all_rows is not None:
                data, readings = batch.all_rows  # joined in the prepare stage
            else:
                chosen = [v for k, v in batch.readings.items() if claimed is None or k in claimed]
                if chosen:
                    data = b"".join([SIGNATURE, *[rows for rows, _ in chosen], TRAILER])
                    readings = sum(n for _, n in chosen)
            if data:
                with conn.cursor().copy(SQL["copy_readings"]) as copy:
                    copy.write(data)
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
        harvests: list[tuple[Any, ...]] = []
        if new_keys:
            # Last: each append takes its cooperative's chain lock (an advisory lock, held
            # until this transaction commits), so other writers of the chain (another
            # consumer, a clerk building a lot) wait only for the harvest COPY and the
            # commit. Cooperatives in one order for every consumer: no deadlock.
            groups, harvest_at = _evidence(batch, claimed)
            seqs: dict[UUID, int] = {}
            for coop in sorted(groups, key=str):
                try:
                    seqs[coop] = record_batch(conn, keys, coop, groups[coop])["seq"]
                except Exception as exc:
                    raise EvidenceError(
                        f"cannot record the batch on cooperative {coop}'s chain: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            events = len(seqs)
            for key, row in batch.harvests.items():
                place = harvest_at.get(key)
                if place is not None:
                    harvests.append((*row, seqs[place[0]], place[1]))
            if harvests:
                with conn.cursor().copy(SQL["copy_harvests"]) as copy:
                    for row in harvests:
                        copy.write_row(row)
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
        batch_events=events,
    )
