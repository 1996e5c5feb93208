"""From broker messages to rows: parse, validate against the registry, and split each batch
into what is stored and what is dead-lettered. Pure apart from the cache lookups, so one
bad message or reading set never affects its neighbours.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import psycopg
from pydantic import BaseModel, TypeAdapter, ValidationError

from coffeetrace.errors import first_line
from coffeetrace.ingest import decode
from coffeetrace.ingest.copyrows import RowShape, row_shape
from coffeetrace.ingest.devices import DeviceCache, DeviceInfo, TreeInfo
from coffeetrace.ingest.ledger import LedgerRows
from coffeetrace.ingest.limits import DeviceLimiter, Limits
from coffeetrace.ingest.models import DeviceStatus, HarvestEvent, TelemetrySet, error_text
from coffeetrace.ingest.topics import Incoming, parse_topic
from coffeetrace.settings import Settings
from coffeetrace.trace.batches import BatchRecords
from coffeetrace.trace.records import (
    EPOCH,
    ReadingSetLeaves,
    harvest_leaf_of,
    scaled,
    time_us,
)

# Rejected items of one message that get a dead-letter row each; the rest of that
# message's rejected items share one summary row (a 1,000-item array of junk is one
# device's mistake, not 1,000 rows).
MAX_REJECTS_PER_MESSAGE = 10
# A rejected message's own key is looked for only in payloads up to this size.
KEY_SCAN_BYTES = 64 * 1024
ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Reject:
    topic: str
    device_id: str | None
    msg_id: str | None
    reason: str  # "code: detail"
    payload: str  # as `encoding` says: the text itself, or the bytes in hex
    payload_size: int
    encoding: str = "text"

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass
class Prepared:
    """One batch, ready for the store: ledger keys and the rows behind each key."""

    ledger: list[tuple[str, str, str, int]] = field(default_factory=list)  # device, key, kind, n
    # one per ledger entry, in the same order: (cooperative, time, leaf hash) of the record
    # behind it (trace/records.py), for the batch's evidence (store.py)
    evidence: list[tuple[UUID, datetime, bytes]] = field(default_factory=list)
    cooperatives: set[UUID] = field(default_factory=set)  # of the records in `evidence`
    # key -> (its sensor_readings rows in binary COPY format (copyrows.py), how many)
    readings: dict[tuple[str, str], tuple[bytes, int]] = field(default_factory=dict)
    harvests: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    statuses: dict[str, tuple[bool, float | None, str | None, datetime]] = field(
        default_factory=dict
    )
    rejects: list[Reject] = field(default_factory=list)
    in_batch_duplicates: int = 0
    newest_ts: list[datetime] = field(default_factory=list)  # one per message with data
    dropped: list[str] = field(default_factory=list)  # codes of rejects left without a row
    # (groups by cooperative with their roots, harvest leaf places) if every key is new,
    # and the ledger rows of `ledger`: store.precompute_evidence, in the worker's prepare
    # stage
    all_new_evidence: (
        tuple[dict[UUID, BatchRecords], dict[tuple[str, str], tuple[UUID, int]]] | None
    ) = None
    ledger_rows: LedgerRows | None = None
    # the COPY data of every set's rows (copyrows.SIGNATURE ... TRAILER), and how many
    all_rows: tuple[bytes, int] | None = None


@dataclass
class Screened:
    """A message that passed every check needing no database: its device (from the topic),
    kind and parsed items, each (model, raw element)."""

    msg: Incoming
    device_id: str
    kind: str
    items: list[tuple[BaseModel, Any]]
    rejected_items: int = 0  # items of this message already dead-lettered


@dataclass
class ScreenedBatch:
    """A batch after screening: the messages to bind, and the rejects screening made."""

    messages: list[Screened]
    rejects: list[Reject]


_LISTS: dict[str, TypeAdapter[Any]] = {
    "telemetry": TypeAdapter(list[TelemetrySet]),
    "harvest": TypeAdapter(list[HarvestEvent]),
}


def _raw_key(raw: Any) -> str | None:
    if isinstance(raw, BaseModel):
        return getattr(raw, "key", None)
    if isinstance(raw, bytes):  # the message as a whole: its key when it is one JSON object
        if not raw.startswith(b"{") or len(raw) > KEY_SCAN_BYTES:
            return None
        try:
            raw = decode.loads(raw, max_depth=3)
        except decode.PayloadError:
            return None
    if isinstance(raw, dict):
        for name in ("msg_id", "seq"):
            value = raw.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return decode.safe_text(str(value), 64)[1]
    return None


_Shape = tuple[RowShape, ReadingSetLeaves, struct.Struct]
_SHAPES: dict[tuple[Any, ...], _Shape] = {}
_SHAPES_MAX = 100_000


def _set_shape(
    device_id: str, plot_id: UUID, tree_id: UUID | None, metrics: tuple[str, ...]
) -> _Shape:
    """The COPY rows' and the leaves' shapes of a device's sets on this plot and tree with
    these metrics, and the packer of their values (cached: a device repeats its shape)."""
    key = (device_id, plot_id.int, None if tree_id is None else tree_id.int, metrics)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        shape = _SHAPES[key] = (
            row_shape(device_id, plot_id, tree_id, metrics),
            ReadingSetLeaves(device_id, plot_id, tree_id, metrics),
            struct.Struct(f">{len(metrics)}d"),
        )
    return shape


class Preparer:
    """Turns a batch of Incoming into a Prepared batch, with the registry cache.

    Two steps: `screen` (no database; per message; a message that breaks it costs only
    itself) and `bind` (registry lookups through the cache, then rows). `prepare` is both.
    """

    def __init__(
        self,
        topic_prefix: str,
        cache: DeviceCache,
        *,
        max_payload_bytes: int,
        clock_skew_s: float,
        payload_chars: int = 4096,
        max_json_depth: int = 8,
        max_sets_per_message: int = 1000,
        limits: Limits | None = None,
    ) -> None:
        self.prefix = topic_prefix
        self.cache = cache
        self.max_payload_bytes = max_payload_bytes
        self.skew = timedelta(seconds=clock_skew_s)
        self.payload_chars = payload_chars
        self.max_json_depth = max_json_depth
        self.max_sets = max_sets_per_message
        self.limiter = DeviceLimiter(limits) if limits is not None and limits.active else None
        self._last_shapes: dict[str, tuple[Any, Any, Any, _Shape]] = {}

    @classmethod
    def from_settings(cls, s: Settings) -> Preparer:
        return cls(
            s.topic_prefix,
            DeviceCache(ttl_s=s.ingest_device_cache_ttl_s),
            max_payload_bytes=s.ingest_max_payload_bytes,
            clock_skew_s=s.ingest_clock_skew_s,
            payload_chars=s.ingest_dead_letter_payload_chars,
            max_json_depth=s.ingest_max_json_depth,
            max_sets_per_message=s.ingest_max_sets_per_message,
            limits=Limits(
                msgs_per_s=s.ingest_device_msgs_per_s,
                msgs_burst=s.ingest_device_msgs_burst,
                sets_per_s=s.ingest_device_sets_per_s,
                sets_burst=s.ingest_device_sets_burst,
            ),
        )

    def reject(
        self, msg: Incoming, device_id: str | None, raw: Any, reason: str, *, find_key: bool = True
    ) -> Reject:
        """A dead letter for `msg` (or one `raw` item of it), its payload stored safely."""
        key = _raw_key(raw) if find_key else None
        if isinstance(raw, BaseModel):  # an item parsed on a fast path
            raw = raw.model_dump_json(exclude_none=True)
        encoding, text = decode.safe_text(raw, self.payload_chars)
        return Reject(
            topic=decode.safe_text(msg.topic, 1024)[1],
            device_id=device_id,
            msg_id=key,
            reason=decode.safe_text(reason, 1024)[1],
            payload=text,
            payload_size=len(msg.payload),
            encoding=encoding,
        )

    def _reject_item(self, out: list[Reject], s: Screened, raw: Any, reason: str) -> None:
        s.rejected_items += 1
        if s.rejected_items <= MAX_REJECTS_PER_MESSAGE:
            out.append(self.reject(s.msg, s.device_id, raw, reason))
        elif s.rejected_items == MAX_REJECTS_PER_MESSAGE + 1:
            out.append(
                self.reject(
                    s.msg,
                    s.device_id,
                    s.msg.payload,
                    f"{reason.split(':', 1)[0]}: more than "
                    f"{MAX_REJECTS_PER_MESSAGE} items of this message "
                    f"rejected; the rest are not listed (last: {reason})",
                )
            )

    # ------------------------------------------------------------------ screen

    def screen(self, messages: Sequence[Incoming]) -> ScreenedBatch:
        """Every check that needs no database, message by message. Never raises for a
        message's content: whatever goes wrong with one becomes its dead letter."""
        out = ScreenedBatch(messages=[], rejects=[])
        for msg in messages:
            try:
                screened = self._screen_one(msg, out.rejects)
            except Exception as exc:  # a payload that breaks the code: its own dead letter
                info = parse_topic(self.prefix, msg.topic)
                out.rejects.append(
                    self.reject(
                        msg,
                        info.device_id if info else None,
                        msg.payload,
                        f"unprocessable: {type(exc).__name__}: {first_line(exc)}",
                    )
                )
                continue
            if screened is not None:
                out.messages.append(screened)
        return out

    def _screen_one(self, msg: Incoming, rejects: list[Reject]) -> Screened | None:
        info = parse_topic(self.prefix, msg.topic)
        if info is None:
            rejects.append(
                self.reject(
                    msg,
                    None,
                    msg.payload,
                    "bad_topic: expected {prefix}/devices/{device_id}/telemetry|harvest|status",
                )
            )
            return None
        if self.limiter is not None:
            limited = self.limiter.admit_message(info.device_id, msg.received_at, msg.generation)
            if limited is not None:  # a flood: spend nothing more on it
                rejects.append(
                    self.reject(msg, info.device_id, msg.payload, limited, find_key=False)
                )
                return None
        if len(msg.payload) > self.max_payload_bytes:
            rejects.append(
                self.reject(
                    msg,
                    info.device_id,
                    msg.payload,
                    f"payload_too_large: {len(msg.payload)} bytes > {self.max_payload_bytes}",
                )
            )
            return None
        screened = self._decode(msg, info.device_id, info.kind, rejects)
        if screened is None:
            return None
        if self.limiter is not None and info.kind != "status":
            limited = self.limiter.admit_sets(
                info.device_id,
                len(screened.items) + screened.rejected_items,
                msg.received_at,
                msg.generation,
            )
            if limited is not None:
                rejects.append(self.reject(msg, info.device_id, msg.payload, limited))
                return None
        return screened

    def _decode(
        self, msg: Incoming, device_id: str, kind: str, rejects: list[Reject]
    ) -> Screened | None:
        model: type[BaseModel] = (
            DeviceStatus
            if kind == "status"
            else TelemetrySet
            if kind == "telemetry"
            else HarvestEvent
        )
        first = msg.payload[:1]
        # Fast paths for well-formed payloads: pydantic parses the JSON itself (the models
        # bound every string and number, so nothing unsafe passes). Anything it refuses
        # takes the slow path below, which rejects item by item and says why.
        if first == b"{":
            try:
                item = model.model_validate_json(msg.payload)
                return Screened(
                    msg=msg, device_id=device_id, kind=kind, items=[(item, msg.payload)]
                )
            except ValidationError:
                pass
        elif first == b"[" and kind != "status":
            try:
                many = _LISTS[kind].validate_json(msg.payload)
                if 0 < len(many) <= self.max_sets:
                    return Screened(
                        msg=msg, device_id=device_id, kind=kind, items=[(m, m) for m in many]
                    )
            except ValidationError:
                pass
        try:
            doc = decode.loads(msg.payload, max_depth=self.max_json_depth)
        except decode.PayloadError as exc:
            rejects.append(self.reject(msg, device_id, msg.payload, str(exc)))
            return None
        if kind == "status":
            elements = [doc]
        else:
            elements = doc if isinstance(doc, list) else [doc]
            if not elements or len(elements) > self.max_sets:
                code = "too_many_sets" if elements else "invalid"
                rejects.append(
                    self.reject(
                        msg,
                        device_id,
                        msg.payload,
                        f"{code}: an array needs 1..{self.max_sets} items (got {len(elements)})",
                    )
                )
                return None
        screened = Screened(msg=msg, device_id=device_id, kind=kind, items=[])
        for element in elements:
            if not isinstance(element, dict):
                self._reject_item(
                    rejects, screened, element, "invalid: each item must be a JSON object"
                )
                continue
            try:
                screened.items.append((model.model_validate(element), element))
            except ValidationError as exc:
                self._reject_item(rejects, screened, element, f"invalid: {error_text(exc)}")
        return screened

    # ------------------------------------------------------------------ bind

    def prepare(
        self,
        conn: psycopg.Connection[Any],
        messages: Sequence[Incoming],
        now: datetime | None = None,
    ) -> Prepared:
        """Everything of `messages` that can be stored, and the rest as rejects."""
        return self.bind(conn, self.screen(messages), now)

    def bind(
        self, conn: psycopg.Connection[Any], batch: ScreenedBatch, now: datetime | None = None
    ) -> Prepared:
        """Registry checks (through the cache) and rows of a screened batch."""
        out = Prepared(rejects=list(batch.rejects))
        self.cache.load_devices(conn, {d.device_id for d in batch.messages})
        wanted: set[tuple[UUID, str]] = set()
        for d in batch.messages:
            device = self.cache.device(d.device_id)
            if device is None:
                continue
            for model, _ in d.items:
                tag = getattr(model, "tree", None)
                if tag:
                    wanted.add((device.cooperative_id, tag))
        if wanted:
            self.cache.load_trees(conn, wanted)
        now = now or datetime.now(UTC)
        seen: set[tuple[str, str]] = set()
        for d in batch.messages:
            self._bind(d, out, now, seen)
        return out

    def _bind(self, d: Screened, out: Prepared, now: datetime, seen: set[tuple[str, str]]) -> None:
        device = self.cache.device(d.device_id)
        if device is None or not device.active:
            code = "unknown_device" if device is None else "inactive_device"
            if d.items:  # one row per message, however many sets it holds
                out.rejects.append(
                    self.reject(
                        d.msg,
                        d.device_id,
                        d.msg.payload,
                        f"{code}: {d.device_id!r} is not an active registered device",
                    )
                )
            return
        if d.kind == "status":
            for model, _raw in d.items:
                assert isinstance(model, DeviceStatus)
                at = datetime.fromtimestamp(d.msg.received_at, UTC)
                out.statuses[device.id] = (model.online, model.battery_pct, model.firmware, at)
            return
        if d.kind == "telemetry":
            self._bind_telemetry(d, device, out, now, seen)
            return
        newest: datetime | None = None
        # the time window is the same for every set of the message
        latest, earliest = now + self.skew, device.registered_at - self.skew
        sets = cast(list[tuple[HarvestEvent, Any]], d.items)  # as the topic says
        for model, raw in sets:
            # In UTC once per set: pydantic's own tzinfo makes every later comparison and
            # every database dump of the value call back into it.
            ts = model.ts.astimezone(UTC)
            problem = None if earliest <= ts <= latest else self._time_problem(ts, device, now)
            tree = None
            if problem is None and (model.tree is not None or device.plot_id is None):
                tree, problem = self._check_tree(model, device)
            if problem is not None:
                self._reject_item(out.rejects, d, raw, problem)
                continue
            msg_key = model.key
            key = (device.id, msg_key)
            if key in seen:
                out.in_batch_duplicates += 1
                continue
            seen.add(key)
            if newest is None or ts > newest:
                newest = ts
            t_us = time_us(ts)
            assert tree is not None  # a harvest names its tree
            # the kilograms and ripeness go to the COPY as the very text the leaf holds
            # (numeric(10, 3) and (5, 2)), rounded as PostgreSQL would round the float
            kg = scaled(model.cherry_kg, 3)
            ripeness = scaled(model.ripeness_pct, 2)
            assert kg is not None
            out.harvests[key] = (
                ts,
                device.id,
                msg_key,
                device.cooperative_id,
                tree.farm_id,
                tree.plot_id,
                tree.id,
                kg,
                ripeness,
                model.picker,
            )
            out.ledger.append((device.id, msg_key, "harvest", 1))
            leaf = harvest_leaf_of(
                device.id,
                msg_key,
                t_us,
                device.cooperative_id,
                tree.farm_id,
                tree.plot_id,
                tree.id,
                kg,
                ripeness,
                model.picker,
            )
            out.evidence.append((device.cooperative_id, ts, leaf))
        if newest is not None:  # at least one record of the cooperative
            out.newest_ts.append(newest)
            out.cooperatives.add(device.cooperative_id)

    def _bind_telemetry(
        self, d: Screened, device: DeviceInfo, out: Prepared, now: datetime, seen: set[Any]
    ) -> None:
        """The reading sets of one telemetry message: its sets as one tight loop (an
        offline buffer holds hundreds), each set's COPY rows and leaf from the cached
        shape of its device, plot, tree and metrics (copyrows.RowShape,
        records.ReadingSetLeaves)."""
        newest: datetime | None = None
        # the time window is the same for every set of the message
        latest, earliest = now + self.skew, device.registered_at - self.skew
        device_id, coop = device.id, device.cooperative_id
        readings, ledger, evidence = out.readings, out.ledger, out.evidence
        # the shape of this device's last set (a 1-set message reuses its previous one's);
        # ids compared by identity: the device cache hands out the same objects
        last = self._last_shapes.get(device_id)
        sets = cast(list[tuple[TelemetrySet, Any]], d.items)  # as the topic says
        for model, raw in sets:
            # In UTC once per set: pydantic's own tzinfo makes every later comparison and
            # every database dump of the value call back into it.
            ts = model.ts.astimezone(UTC)
            problem = None if earliest <= ts <= latest else self._time_problem(ts, device, now)
            tree = None
            if problem is None and (model.tree is not None or device.plot_id is None):
                tree, problem = self._check_tree(model, device)
            if problem is not None:
                self._reject_item(out.rejects, d, raw, problem)
                continue
            msg_key = model.msg_id if model.msg_id is not None else str(model.seq)
            key = (device_id, msg_key)
            if key in seen:
                out.in_batch_duplicates += 1
                continue
            seen.add(key)
            if newest is None or ts > newest:
                newest = ts
            t_us = (ts - EPOCH) // ONE_US
            values = model.values
            # sorted once, for both the leaf and the binary COPY rows
            metrics = tuple(sorted(values))
            plot_id = tree.plot_id if tree else device.plot_id
            tree_id = tree.id if tree else None
            if (
                last is None
                or last[1] is not plot_id
                or last[2] is not tree_id
                or last[0] != metrics
            ):
                assert plot_id is not None  # _check_tree refused a set with no plot
                last = (metrics, plot_id, tree_id, _set_shape(device_id, plot_id, tree_id, metrics))
                if len(self._last_shapes) >= _SHAPES_MAX:
                    self._last_shapes.clear()
                self._last_shapes[device_id] = last
            rows, leaves, packer = last[3]
            numbers = [values[m] for m in metrics]
            readings[key] = (rows.rows(t_us, numbers), len(metrics))
            ledger.append((device_id, msg_key, "telemetry", len(metrics)))
            evidence.append((coop, ts, leaves.leaf(msg_key, t_us, packer.pack(*numbers))))
        if newest is not None:  # at least one record of the cooperative
            out.newest_ts.append(newest)
            out.cooperatives.add(device.cooperative_id)

    def _time_problem(self, ts: datetime, device: DeviceInfo, now: datetime) -> str:
        if ts > now + self.skew:
            return (
                f"future_timestamp: {ts.isoformat()} is more than "
                f"{self.skew.total_seconds():g} s ahead of the server clock"
            )
        # the same tolerance applies on this side: a device's clock may run a little behind
        return (
            f"before_registration: {ts.isoformat()} is before the device was "
            f"registered ({device.registered_at.isoformat()})"
        )

    def _check_tree(
        self, model: TelemetrySet | HarvestEvent, device: DeviceInfo
    ) -> tuple[TreeInfo | None, str | None]:
        tag = model.tree
        if not tag:
            if device.plot_id is None:
                return None, (
                    "no_plot: the device is bound to no plot or tree; "
                    'name the tree ("tree": tag code)'
                )
            return None, None
        tree = self.cache.tree(device.cooperative_id, tag)
        if tree is None:
            return None, f"unknown_tree: no tree tagged {tag!r} in the device's cooperative"
        if device.tree_id is not None and tree.id != device.tree_id:
            return None, f"tree_not_bound: the device is bound to another tree than {tag!r}"
        if device.tree_id is None and device.plot_id is not None and tree.plot_id != device.plot_id:
            return None, f"tree_not_bound: tree {tag!r} is not on the device's plot"
        return tree, None
