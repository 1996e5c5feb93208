"""Evidence of what ingest stored: one chain event per committed batch and cooperative,
holding the Merkle root over the batch's records (migration 0043).

Ingest (ingest/store.py) writes, in the transaction of its COPYs, for each cooperative
whose records a batch stored: an 'ingest_batch' event on the cooperative's chain with
payload {"root": hex, "size": n, "harvests": h, "reading_sets": r} (`record_batch`),
and the ingest_batches row listing the records (device, key, kind, time) and their
leaves (trace/records.py) in leaf order. Harvest rows point at their leaf
(harvest_events.batch_seq, batch_index); a reading set is found again by its device and
time.

Then an edit of a stored record with psql is named: `verify_harvests` (the harvests of
a lot), `verify_batch` (every record of one batch, for the chain audit), and a harvest
proves its inclusion in its event's root with `harvest_proof` / `check_harvest_proof`.
This module checks an event's own hash; its links to its neighbours and its signature
are the chain audit's (verification.py).

Harvests stored by other means than ingest (tests, benchmark seeders) are sealed the way
ingest would have sealed them with `seal_harvests`.

Problems have the shape of verification.py's, plus the record concerned:
{"seq": the ingest_batch event's seq (None when unknown), "kind": its kind (None when
there is no event), "problem": "row_mismatch" | "missing_event" | "hash_mismatch",
"detail": a sentence naming the record (and the field when it can be told), "record":
{"type": "harvest" | "reading_set", "id": harvest id | "device_id/msg_id"}, or None for a
problem of the batch as a whole}.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import product
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import chain, merkle
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import iso_utc
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.records import harvest_leaf, reading_set_leaf, time_us

SQL = load_queries("coffeetrace.trace", "batches.sql")
log = logging.getLogger(__name__)

KIND = "ingest_batch"
LEAF_SIZE = merkle.HASH_SIZE
SEAL_CHUNK = 10_000  # harvests per sealed batch (and ids per query) in seal_harvests
# Shared-time fallback (see verify_batch): at most this many readings at one device and
# time, and this many candidate subsets, are tried.
_SUBSET_ROWS = 16
_SUBSET_TRIES = 4096


@dataclass
class BatchRecords:
    """One cooperative's records of one batch, in leaf order. `times` are aware datetimes
    (what the record's leaf holds, to the microsecond); `kinds` are 'harvest' or
    'telemetry'."""

    device_ids: list[str] = field(default_factory=list)
    msg_ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    # the Merkle root of `leaves`, when computed ahead (ingest's prepare stage); else
    # record_batch computes it
    root: bytes | None = None

    def add(self, device_id: str, msg_id: str, kind: str, time: datetime, leaf: bytes) -> int:
        """Append one record; returns its leaf index."""
        self.root = None  # no longer the root of these leaves
        self.device_ids.append(device_id)
        self.msg_ids.append(msg_id)
        self.kinds.append(kind)
        self.times.append(time)
        self.leaves.append(leaf)
        return len(self.leaves) - 1


def batch_root(leaves: Sequence[bytes]) -> bytes:
    """merkle.root(leaves), computed level by level (pairs from the left, the odd node
    carried up as it is), which gives the same tree as RFC 9162's split at the largest
    power of two without recursion or slicing: n - 1 hashes for n leaves."""
    if not leaves:
        return merkle.EMPTY_ROOT
    level = list(leaves)
    sha = hashlib.sha256  # merkle.node_hash inlined: a batch has thousands of nodes
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [
            sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


def record_batch(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    records: BatchRecords,
    *,
    occurred_at: datetime | None = None,
) -> Row:
    """Append the cooperative's 'ingest_batch' event for `records` (at least one) and store
    its ingest_batches row; returns the event row. Runs in the caller's transaction.

    chain.append_event takes the cooperative's chain lock (an advisory lock held until the
    caller commits): every other writer of that chain (ingest consumers, lots, steps)
    waits from here to the commit, so callers append last, after their bulk writes."""
    n = len(records.leaves)
    if n == 0:
        raise ValueError("a batch needs at least one record")
    harvests = records.kinds.count("harvest")
    payload = {
        "root": (records.root or batch_root(records.leaves)).hex(),
        "size": n,
        "harvests": harvests,
        "reading_sets": n - harvests,
    }
    event = chain.append_event(
        conn,
        cooperative_id,
        KIND,
        [],
        occurred_at or datetime.now(UTC),
        payload,
        keys=keys,
    )
    q.execute(
        conn,
        SQL["batches_insert"],
        {
            "seq": event["seq"],
            "cooperative_id": cooperative_id,
            "device_ids": "\n".join(records.device_ids),
            "msg_ids": "\n".join(records.msg_ids),
            "kinds": "\n".join(records.kinds),
            "times": records.times,
            "leaves": b"".join(records.leaves),
        },
    )
    return event


# ------------------------------------------------------------------ sealing


def seal_harvests(
    conn: DbConn,
    keys: KeyRing,
    harvest_ids: Iterable[UUID],
    *,
    chunk: int = SEAL_CHUNK,
    occurred_at: datetime | None = None,
) -> Row:
    """Seal harvests stored by other means than ingest (tests, seeders) as ingest would
    have: per cooperative and per `chunk` harvests, one 'ingest_batch' event and
    ingest_batches row, and each row's batch_seq / batch_index. Harvests already in a
    batch are left as they are. Runs in the caller's transaction.

    Returns {"sealed": harvests sealed now, "events": [seq of each event appended]}."""
    ids = list(dict.fromkeys(harvest_ids))
    sealed, events = 0, []
    for start in range(0, len(ids), chunk):
        rows = q.rows(conn, SQL["batches_harvests_to_seal"], {"ids": ids[start : start + chunk]})
        by_coop: dict[UUID, list[Row]] = {}
        for row in rows:
            by_coop.setdefault(row["cooperative_id"], []).append(row)
        for coop in sorted(by_coop, key=str):  # one lock order for every writer
            group = by_coop[coop]
            records = BatchRecords()
            for h in group:
                records.add(h["device_id"], h["msg_id"], "harvest", h["time"], harvest_leaf(h))
            event = record_batch(conn, keys, coop, records, occurred_at=occurred_at)
            q.execute(
                conn,
                SQL["batches_set_harvest_places"],
                {
                    "seq": event["seq"],
                    "ids": [h["id"] for h in group],
                    "times": [h["time"] for h in group],
                },
            )
            events.append(event["seq"])
            sealed += len(group)
    log.debug("harvests_sealed harvests=%s events=%s", sealed, len(events))
    return {"sealed": sealed, "events": events}


def seal_cooperative(
    conn: DbConn, keys: KeyRing, cooperative_id: UUID, *, chunk: int = SEAL_CHUNK
) -> Row:
    """seal_harvests for every harvest of the cooperative that is in no batch, `chunk` at
    a time in (time, id) order (bulk seeders). Returns {"sealed", "events"}."""
    sealed, events = 0, []
    after: tuple[datetime | None, UUID | None] = (None, None)
    while rows := q.rows(
        conn,
        SQL["batches_unsealed_of_cooperative"],
        {
            "cooperative_id": cooperative_id,
            "after_time": after[0],
            "after_id": after[1],
            "limit": chunk,
        },
    ):
        done = seal_harvests(conn, keys, [r["id"] for r in rows], chunk=chunk)
        sealed += done["sealed"]
        events += done["events"]
        after = (rows[-1]["time"], rows[-1]["id"])
    return {"sealed": sealed, "events": events}


def harvest_batch_seqs(conn: DbConn, harvest_ids: Iterable[UUID]) -> list[int]:
    """The seqs of the ingest_batch events the harvests are in (for checking their links
    and signatures with the rest of a lot's events)."""
    rows = q.rows(conn, SQL["batches_seqs_of_harvests"], {"ids": list(harvest_ids)})
    return [r["batch_seq"] for r in rows]


# ------------------------------------------------------------------ verifying


def _problem(
    seq: int | None, kind: str | None, problem: str, detail: str, record: Row | None
) -> Row:
    return {"seq": seq, "kind": kind, "problem": problem, "detail": detail, "record": record}


def _harvest_record(h: Row) -> Row:
    return {"type": "harvest", "id": str(h["id"])}


def _harvest_name(h: Row) -> str:
    return f"harvest {h['id']} ({h['device_id']}/{h['msg_id']})"


def _leaves(batch: Row) -> list[bytes]:
    data = bytes(batch["leaves"])
    return [data[i : i + LEAF_SIZE] for i in range(0, len(data), LEAF_SIZE)]


def _check_batch(batch: Row, *, check_event_hash: bool) -> tuple[list[Row], bool]:
    """Problems of one batch as a whole (its event, its arrays, its root); and whether its
    records can be checked against its leaves (its ingest_batches row exists)."""
    seq = batch["seq"]
    kind = batch["kind"]
    if batch["event_seq"] is None and batch["batch_seq"] is None:
        return [
            _problem(seq, None, "missing_event", f"there is no ingest_batch event {seq}", None)
        ], False
    problems: list[Row] = []
    if batch["event_seq"] is None:
        problems.append(
            _problem(
                seq,
                None,
                "missing_event",
                f"the ingest_batch event {seq} of a stored batch is gone",
                None,
            )
        )
    elif kind != KIND:
        problems.append(
            _problem(seq, kind, "row_mismatch", f"event {seq} is a {kind}, not an {KIND}", None)
        )
    elif check_event_hash:
        recomputed = chain.event_hash(
            seq=batch["event_seq"],
            cooperative_id=batch["cooperative_id"],
            kind=kind,
            lot_ids=batch["lot_ids"],
            occurred_at=batch["occurred_at"],
            payload=batch["payload"],
            prev_hash=batch["prev_hash"],
        )
        if recomputed != batch["hash"]:
            problems.append(
                _problem(
                    seq,
                    kind,
                    "hash_mismatch",
                    f"event {seq} ({kind}) was edited: its content no longer gives its stored hash",
                    None,
                )
            )
    if batch["batch_seq"] is None:
        problems.append(
            _problem(
                seq,
                kind,
                "row_mismatch",
                f"the records of event {seq} ({KIND}) are gone: it has no ingest_batches row",
                None,
            )
        )
        return problems, False
    leaves = _leaves(batch)
    n = len(leaves)
    lengths = {len(batch["device_ids"]), len(batch["msg_ids"]), len(batch["kinds"])}
    lengths |= {len(batch["times"])}
    if lengths != {n} or len(bytes(batch["leaves"])) != n * LEAF_SIZE:
        problems.append(
            _problem(
                seq,
                kind,
                "row_mismatch",
                f"batch {seq} was edited: its arrays and leaves do not list the same records",
                None,
            )
        )
    payload = batch["payload"] if isinstance(batch["payload"], dict) else {}
    if batch["event_seq"] is not None and kind == KIND:
        if payload.get("root") != batch_root(leaves).hex() or payload.get("size") != n:
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"the leaves of batch {seq} no longer give the root and size its event"
                    f" recorded ({payload.get('size')} records): a record's leaf was edited,"
                    " added or removed",
                    None,
                )
            )
        harvests = list(batch["kinds"]).count("harvest")
        if (payload.get("harvests"), payload.get("reading_sets")) != (harvests, n - harvests):
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"the kinds of the records of batch {seq} were edited: {harvests} harvests"
                    f" and {n - harvests} reading sets where its event recorded"
                    f" {payload.get('harvests')} and {payload.get('reading_sets')}",
                    None,
                )
            )
        if batch["batch_cooperative_id"] != batch["cooperative_id"]:
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"batch {seq} names cooperative {batch['batch_cooperative_id']}, its event"
                    f" {batch['cooperative_id']}",
                    None,
                )
            )
    return problems, True


def _at(values: Sequence[Any], i: int) -> Any:
    return values[i] if 0 <= i < len(values) else None


def _check_harvest(h: Row, batch: Row, leaves: list[bytes], leaf: bytes | None = None) -> list[Row]:
    """One harvest row against record `batch_index` of its batch (`leaf`: the row's own
    leaf, when the caller computed it already)."""
    seq, kind = batch["seq"], batch["kind"]
    i = h["batch_index"]
    name = _harvest_name(h)
    if i is None or not 0 <= i < len(leaves):
        return [
            _problem(
                seq,
                kind,
                "row_mismatch",
                f"{name} claims record {i} of batch {seq}, which has {len(leaves)} records",
                _harvest_record(h),
            )
        ]
    diffs: list[str] = []
    if _at(batch["kinds"], i) != "harvest":
        diffs.append(f"record {i} of the batch is a {_at(batch['kinds'], i)}, not a harvest")
    for column, recorded in (
        ("device_id", _at(batch["device_ids"], i)),
        ("msg_id", _at(batch["msg_ids"], i)),
    ):
        if recorded != h[column]:
            diffs.append(f"{column} {recorded!r} became {h[column]!r}")
    recorded_time = _at(batch["times"], i)
    if recorded_time is None or time_us(recorded_time) != time_us(h["time"]):
        was = iso_utc(recorded_time) if recorded_time is not None else None
        diffs.append(f"time {was} became {iso_utc(h['time'])}")
    if batch["batch_cooperative_id"] != h["cooperative_id"]:
        diffs.append(f"cooperative_id {batch['batch_cooperative_id']} became {h['cooperative_id']}")
    if (harvest_leaf(h) if leaf is None else leaf) != leaves[i] and not diffs:
        diffs.append(_harvest_guess(h))
    if not diffs:
        return []
    return [
        _problem(
            seq,
            kind,
            "row_mismatch",
            f"{name} no longer matches its leaf {i} in batch {seq}: " + "; ".join(diffs),
            _harvest_record(h),
        )
    ]


def _harvest_guess(h: Row) -> str:
    """What changed, when the device, key, time and cooperative still match: the leaf says
    only that something did; the registry may tell which."""
    if h.get("tree_plot_id") is None:
        return f"tree_id changed (there is no tree {h['tree_id']})"
    if h["tree_plot_id"] != h["plot_id"]:
        return (
            f"tree_id or plot_id changed (tree {h['tree_id']} is on plot {h['tree_plot_id']},"
            f" the row says plot {h['plot_id']})"
        )
    if h.get("plot_farm_id") is not None and h["plot_farm_id"] != h["farm_id"]:
        return (
            f"plot_id or farm_id changed (plot {h['plot_id']} is on farm {h['plot_farm_id']},"
            f" the row says farm {h['farm_id']})"
        )
    return (
        f"one of its values changed (cherry_kg now {h['cherry_kg']}, ripeness_pct"
        f" {h['ripeness_pct']}, tree_id {h['tree_id']}, plot_id, farm_id or picker_code)"
    )


def _batches(conn: DbConn, seqs: Iterable[int]) -> dict[int, Row]:
    rows = q.rows(conn, SQL["batches_by_seqs"], {"seqs": sorted(set(seqs))})
    return {r["seq"]: r for r in rows}


def harvest_rows(conn: DbConn, harvest_ids: Iterable[UUID]) -> list[Row]:
    """The harvest_events rows of the ids (those that exist), as verify_harvests reads
    them: with the plot of each row's tree and the farm of its plot."""
    return q.rows(conn, SQL["batches_harvests_by_ids"], {"ids": list(harvest_ids)})


def verify_harvests(
    conn: DbConn,
    harvest_ids: Iterable[UUID],
    *,
    check_event_hash: bool = True,
    rows: list[Row] | None = None,
    leaves_out: dict[UUID, bytes] | None = None,
) -> list[Row]:
    """Each harvest against the leaf at its batch_index in its batch, and each batch's
    leaves against the root its ingest_batch event recorded. [] when all hold.

    A harvest without a batch (written before migration 0043, or inserted by hand) is
    "missing_event"; so is a harvest whose event is gone. `check_event_hash`: also
    recompute each event's hash (the chain audit, which does so itself, passes False).
    `rows`: harvest_rows(ids) when the caller read them already; `leaves_out` receives
    each harvest's own leaf by id (a lot's check compares them with the leaves its
    lot_created event pinned, without hashing every record twice)."""
    ids = list(dict.fromkeys(UUID(str(h)) for h in harvest_ids))
    if rows is None:
        rows = harvest_rows(conn, ids)
    found = {r["id"] for r in rows}
    problems: list[Row] = [
        _problem(
            None,
            None,
            "row_mismatch",
            f"harvest {h} is gone: no harvest_events row has that id",
            {"type": "harvest", "id": str(h)},
        )
        for h in ids
        if h not in found
    ]
    batches = _batches(conn, (r["batch_seq"] for r in rows if r["batch_seq"] is not None))
    checked: dict[int, tuple[bool, list[bytes]]] = {}
    for h in sorted(rows, key=lambda r: (r["batch_seq"] or 0, r["batch_index"] or 0)):
        seq = h["batch_seq"]
        if seq is None:
            problems.append(
                _problem(
                    None,
                    None,
                    "missing_event",
                    f"{_harvest_name(h)} is in no ingest batch: nothing recorded it when it"
                    " was stored",
                    _harvest_record(h),
                )
            )
            continue
        batch = batches[seq]
        if seq not in checked:
            found_problems, usable = _check_batch(batch, check_event_hash=check_event_hash)
            problems += found_problems
            checked[seq] = (usable, _leaves(batch) if usable else [])
        usable, leaves = checked[seq]
        if not usable:
            gone = batch["event_seq"] is None
            problems.append(
                _problem(
                    seq,
                    None if gone else batch["kind"],
                    "missing_event" if gone else "row_mismatch",
                    f"{_harvest_name(h)} names batch {seq}, whose "
                    + ("event and records are gone" if gone else "records are gone"),
                    _harvest_record(h),
                )
            )
            continue
        leaf = harvest_leaf(h)
        if leaves_out is not None:
            leaves_out[h["id"]] = leaf
        problems += _check_harvest(h, batch, leaves, leaf)
    return problems


def verify_batch(conn: DbConn, event_seq: int, *, check_event_hash: bool = True) -> list[Row]:
    """Every record of one batch against its leaf: its harvests (by batch_seq) and its
    reading sets (found by device and time from the batch's arrays), and the leaves
    against the event's root. Names each harvest or reading set that was changed, moved
    or deleted. [] when all hold.

    Two reading sets of one device with the same time share their rows (migration 0043):
    when a set's rows at its device and time do not give its leaf, the subsets of them
    with one reading per metric are tried, and the set is reported only when none does."""
    batch = _batches(conn, [event_seq])[event_seq]
    problems, usable = _check_batch(batch, check_event_hash=check_event_hash)
    if not usable:
        return problems
    seq, kind = batch["seq"], batch["kind"]
    leaves = _leaves(batch)
    kinds = list(batch["kinds"])
    harvest_rows = q.rows(conn, SQL["batches_harvests_of_batch"], {"seq": event_seq})
    claimed: dict[int, Row] = {}
    for h in harvest_rows:
        i = h["batch_index"]
        if i in claimed:
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"{_harvest_name(h)} claims record {i} of batch {seq}, which"
                    f" {_harvest_name(claimed[i])} holds: one of them was added or moved",
                    _harvest_record(h),
                )
            )
            continue
        claimed[i] = h
        problems += _check_harvest(h, batch, leaves)
    for i, k in enumerate(kinds):
        if k == "harvest" and i not in claimed:
            key = f"{_at(batch['device_ids'], i)}/{_at(batch['msg_ids'], i)}"
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"harvest {key} (record {i} of batch {seq}) is gone: deleted, or its"
                    " batch_seq or batch_index changed",
                    {"type": "harvest", "id": key},
                )
            )
        elif k not in ("harvest", "telemetry"):
            problems.append(
                _problem(
                    seq,
                    kind,
                    "row_mismatch",
                    f"record {i} of batch {seq} has the unknown kind {k!r}",
                    None,
                )
            )
    problems += _check_reading_sets(conn, batch, leaves)
    return problems


def _check_reading_sets(conn: DbConn, batch: Row, leaves: list[bytes]) -> list[Row]:
    seq, kind = batch["seq"], batch["kind"]
    wanted = [
        i
        for i, k in enumerate(batch["kinds"])
        if k == "telemetry" and i < len(leaves) and i < len(batch["times"])
    ]
    if not wanted:
        return []
    device_ids = [batch["device_ids"][i] for i in wanted]
    times = [batch["times"][i] for i in wanted]
    found: dict[int, list[tuple[Any, Any, str, float]]] = {}
    for r in q.rows(conn, SQL["batches_reading_rows"], {"device_ids": device_ids, "times": times}):
        found.setdefault(r["i"] - 1, []).append(
            (r["plot_id"], r["tree_id"], r["metric"], r["value"])
        )
    broken: list[tuple[int, int]] = []  # (record index, readings found)
    for j, i in enumerate(wanted):
        rows = found.get(j, [])
        args = (device_ids[j], batch["msg_ids"][i], time_us(times[j]))
        if not rows or not _set_matches(args, rows, leaves[i]):
            broken.append((i, len(rows)))
    if not broken:
        return []
    stored = {
        (r["device_id"], r["msg_id"]): r["readings"]
        for r in q.rows(
            conn,
            SQL["batches_ledger_readings"],
            {
                "device_ids": [batch["device_ids"][i] for i, _ in broken],
                "msg_ids": [batch["msg_ids"][i] for i, _ in broken],
            },
        )
    }
    problems = []
    for i, n in broken:
        device, msg = batch["device_ids"][i], batch["msg_ids"][i]
        at = iso_utc(batch["times"][i])
        record = {"type": "reading_set", "id": f"{device}/{msg}"}
        if n == 0:
            detail = (
                f"reading set {device}/{msg} (record {i} of batch {seq}) is gone: no readings"
                f" of {device} at {at} (deleted, or their device or time changed)"
            )
        else:
            was = stored.get((device, msg))
            count = (
                f"; ingest stored {was} readings, {n} are there now"
                if was is not None and was != n
                else ""
            )
            detail = (
                f"reading set {device}/{msg} (record {i} of batch {seq}, at {at}) no longer"
                f" matches its leaf: a value, metric, plot or tree changed, or a reading was"
                f" deleted{count}"
            )
        problems.append(_problem(seq, kind, "row_mismatch", detail, record))
    return problems


def _set_matches(
    args: tuple[str, str, int], rows: list[tuple[Any, Any, str, float]], leaf: bytes
) -> bool:
    """Do the readings at a set's device and time give its leaf: all of them, or (when
    another set shares that time) some of them, one per metric, of one plot and tree?"""
    device_id, msg_id, t = args
    places: dict[tuple[Any, Any], list[tuple[str, float]]] = {}
    for plot_id, tree_id, metric, value in rows:
        places.setdefault((plot_id, tree_id), []).append((metric, value))
    if len(places) == 1:
        (plot_id, tree_id), values = next(iter(places.items()))
        if reading_set_leaf(device_id, msg_id, t, plot_id, tree_id, values) == leaf:
            return True
    if len(rows) > _SUBSET_ROWS:
        return False
    tries = 0
    for (plot_id, tree_id), values in places.items():
        by_metric: dict[str, list[float]] = {}
        for metric, value in values:
            by_metric.setdefault(metric, []).append(value)
        metrics = sorted(by_metric)
        # each metric: left out (None) or one of its values
        for choice in product(*[[None, *by_metric[m]] for m in metrics]):
            tries += 1
            if tries > _SUBSET_TRIES:
                return False
            subset = [(m, v) for m, v in zip(metrics, choice, strict=True) if v is not None]
            if subset and (
                reading_set_leaf(device_id, msg_id, t, plot_id, tree_id, subset) == leaf
            ):
                return True
    return False


# ------------------------------------------------------------------ proofs


def harvest_proof(conn: DbConn, harvest_id: UUID) -> Row:
    """The evidence that a harvest is in its ingest_batch event: {"harvest_id",
    "event_seq", "event_hash", "event" (the event's hashed fields and signature, to
    recompute its hash), "leaf_index", "tree_size", "leaf" (hex), "audit_path" (hex,
    from the leaf up, RFC 9162 2.1.3), "root" (hex)}. Check it with check_harvest_proof."""
    rows = q.rows(conn, SQL["batches_harvests_by_ids"], {"ids": [harvest_id]})
    if not rows:
        raise NotFound("no such harvest", harvest_id=str(harvest_id))
    h = rows[0]
    if h["batch_seq"] is None:
        raise NotFound("the harvest is in no ingest batch", harvest_id=str(harvest_id))
    batch = _batches(conn, [h["batch_seq"]])[h["batch_seq"]]
    if batch["batch_seq"] is None or batch["event_seq"] is None:
        raise NotFound(
            "the harvest's batch or its event is gone",
            harvest_id=str(harvest_id),
            event_seq=h["batch_seq"],
        )
    leaves = _leaves(batch)
    index = h["batch_index"]
    if index is None or not 0 <= index < len(leaves):
        raise NotFound(
            "the harvest's leaf index is not in its batch",
            harvest_id=str(harvest_id),
            event_seq=h["batch_seq"],
        )
    return {
        "harvest_id": str(h["id"]),
        "event_seq": batch["event_seq"],
        "event_hash": batch["hash"],
        "event": {
            "seq": batch["event_seq"],
            "cooperative_id": str(batch["cooperative_id"]),
            "kind": batch["kind"],
            "lot_ids": [str(x) for x in batch["lot_ids"]],
            "occurred_at": iso_utc(batch["occurred_at"]),
            "payload": batch["payload"],
            "prev_hash": batch["prev_hash"],
            "position": batch["position"],
            "signature": batch["signature"],
        },
        "leaf_index": index,
        "tree_size": len(leaves),
        "leaf": leaves[index].hex(),
        "audit_path": [p.hex() for p in merkle.inclusion_proof(index, leaves)],
        "root": batch_root(leaves).hex(),
    }


def check_harvest_proof(proof: Row, row: Row) -> str | None:
    """None when `proof` (from harvest_proof) shows that the harvest row `row` (its
    harvest_events columns) is the leaf it names, under the root its event recorded, and
    the event's content gives the event's hash; else the reason it does not. Pure. The
    event's signature (proof["event"]["signature"]) is checked with the cooperative's
    public key (keys.verify_with, domain chain.EVENT_DOMAIN, over the hash)."""
    try:
        leaf = bytes.fromhex(proof["leaf"])
        root = bytes.fromhex(proof["root"])
        path = [bytes.fromhex(p) for p in proof["audit_path"]]
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        event = proof["event"]
    except (KeyError, TypeError, ValueError):
        return "the proof is malformed"
    if str(row.get("id")) != str(proof.get("harvest_id")):
        return "the proof is for another harvest"
    if harvest_leaf(row) != leaf:
        return "the harvest row does not give the proof's leaf: the row was changed"
    if not merkle.verify_inclusion(index, size, leaf, path, root):
        return "the audit path does not lead from the leaf to the root"
    payload = event.get("payload") if isinstance(event, dict) else None
    if not isinstance(payload, dict) or payload.get("root") != proof["root"]:
        return "the root is not the one the event recorded"
    if payload.get("size") != size:
        return "the tree size is not the one the event recorded"
    try:
        recomputed = chain.event_hash(
            seq=event["seq"],
            cooperative_id=event["cooperative_id"],
            kind=event["kind"],
            lot_ids=event["lot_ids"],
            occurred_at=datetime.fromisoformat(event["occurred_at"]),
            payload=payload,
            prev_hash=event["prev_hash"],
        )
    except (KeyError, TypeError, ValueError):
        return "the proof's event is malformed"
    if event.get("kind") != KIND or recomputed != proof.get("event_hash"):
        return "the event's content does not give the event hash"
    return None
