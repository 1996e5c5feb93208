"""From broker messages to rows: parse, validate against the registry, and split each batch
into what is stored and what is dead-lettered. Pure apart from the cache lookups, so one
bad message or reading set never affects its neighbours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import psycopg
from coffeetrace.ingest.devices import DeviceCache, DeviceInfo
from coffeetrace.ingest.models import DeviceStatus, HarvestEvent, TelemetrySet, error_text
from coffeetrace.ingest.topics import Incoming, parse_topic
from pydantic import BaseModel, TypeAdapter, ValidationError

MAX_SETS_PER_MESSAGE = 10_000


@dataclass(frozen=True)
class Reject:
    topic: str
    device_id: str | None
    msg_id: str | None
    reason: str  # "code: detail"
    payload: str
    payload_size: int

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass
class Prepared:
    """One batch, ready for the store: ledger keys and the rows behind each key."""

    ledger: list[tuple[str, str, str, int]] = field(default_factory=list)  # device, key, kind, n
    readings: dict[tuple[str, str], list[tuple[Any, ...]]] = field(default_factory=dict)
    harvests: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    statuses: dict[str, tuple[bool, float | None, str | None, datetime]] = field(
        default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    in_batch_duplicates: int = 0
    newest_ts: list[datetime] = field(default_factory=list)  # one per message with data


@dataclass
class _Decoded:
    msg: Incoming
    device_id: str
    kind: str
    items: list[tuple[BaseModel, Any]]  # (model, raw element)


_LISTS: dict[str, TypeAdapter[Any]] = {"telemetry": TypeAdapter(list[TelemetrySet]),
                                       "harvest": TypeAdapter(list[HarvestEvent])}


def _text(raw: Any, limit: int) -> str:
    if isinstance(raw, BaseModel):  # an item parsed on a fast path
        return raw.model_dump_json(exclude_none=True)[:limit]
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    else:
        text = json.dumps(raw, ensure_ascii=False, default=str)
    return text[:limit]


def _raw_key(raw: Any) -> str | None:
    if isinstance(raw, BaseModel):
        return getattr(raw, "key", None)
    if isinstance(raw, bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if isinstance(raw, dict):
        for name in ("msg_id", "seq"):
            value = raw.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)[:64]
    return None


class Preparer:
    """Turns a batch of Incoming into a Prepared batch, with the registry cache."""

    def __init__(self, topic_prefix: str, cache: DeviceCache, *, max_payload_bytes: int,
                 clock_skew_s: float, payload_chars: int = 4096) -> None:
        self.prefix = topic_prefix
        self.cache = cache
        self.max_payload_bytes = max_payload_bytes
        self.skew = timedelta(seconds=clock_skew_s)
        self.payload_chars = payload_chars

    def _reject(self, out: Prepared, msg: Incoming, device_id: str | None, raw: Any,
                reason: str) -> None:
        out.rejects.append(Reject(topic=msg.topic, device_id=device_id, msg_id=_raw_key(raw),
                                  reason=reason, payload=_text(raw, self.payload_chars),
                                  payload_size=len(msg.payload)))

    def _decode(self, msg: Incoming, out: Prepared) -> _Decoded | None:
        info = parse_topic(self.prefix, msg.topic)
        if info is None:
            self._reject(out, msg, None, msg.payload,
                         "bad_topic: expected {prefix}/devices/{device_id}/"
                         "telemetry|harvest|status")
            return None
        if len(msg.payload) > self.max_payload_bytes:
            self._reject(out, msg, info.device_id, msg.payload,
                         f"payload_too_large: {len(msg.payload)} bytes > "
                         f"{self.max_payload_bytes}")
            return None
        model: type[BaseModel]
        model = {"status": DeviceStatus, "telemetry": TelemetrySet}.get(info.kind, HarvestEvent)
        first = msg.payload[:1]
        # Fast paths for well-formed payloads: pydantic parses the JSON itself. Anything it
        # refuses takes the slow path below, which rejects item by item and says why.
        if first == b"{":
            try:
                item = model.model_validate_json(msg.payload)
                return _Decoded(msg=msg, device_id=info.device_id, kind=info.kind,
                                items=[(item, msg.payload)])
            except ValidationError:
                pass
        elif first == b"[" and info.kind != "status":
            try:
                many = _LISTS[info.kind].validate_json(msg.payload)
                if 0 < len(many) <= MAX_SETS_PER_MESSAGE:
                    return _Decoded(msg=msg, device_id=info.device_id, kind=info.kind,
                                    items=[(m, m) for m in many])
            except ValidationError:
                pass
        try:
            doc = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            self._reject(out, msg, info.device_id, msg.payload, f"invalid_json: {exc}")
            return None
        if info.kind == "status":
            elements = [doc]
        else:
            elements = doc if isinstance(doc, list) else [doc]
            if not elements or len(elements) > MAX_SETS_PER_MESSAGE:
                self._reject(out, msg, info.device_id, msg.payload,
                             f"invalid: an array needs 1..{MAX_SETS_PER_MESSAGE} items")
                return None
        items: list[tuple[BaseModel, Any]] = []
        for element in elements:
            if not isinstance(element, dict):
                self._reject(out, msg, info.device_id, element,
                             "invalid: each item must be a JSON object")
                continue
            try:
                items.append((model.model_validate(element), element))
            except ValidationError as exc:
                self._reject(out, msg, info.device_id, element, f"invalid: {error_text(exc)}")
        return _Decoded(msg=msg, device_id=info.device_id, kind=info.kind, items=items)

    def prepare(self, conn: psycopg.Connection[Any], messages: Sequence[Incoming],
                now: datetime | None = None) -> Prepared:
        """Everything of `messages` that can be stored, and the rest as rejects."""
        out = Prepared()
        decoded = [d for m in messages if (d := self._decode(m, out)) is not None]
        self.cache.load_devices(conn, {d.device_id for d in decoded})
        wanted: set[tuple[UUID, str]] = set()
        for d in decoded:
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
        for d in decoded:
            self._bind(d, out, now, seen)
        return out

    def _bind(self, d: _Decoded, out: Prepared, now: datetime,
              seen: set[tuple[str, str]]) -> None:
        device = self.cache.device(d.device_id)
        if device is None or not device.active:
            code = "unknown_device" if device is None else "inactive_device"
            if d.items:  # one row per message, however many sets it holds
                self._reject(out, d.msg, d.device_id, d.msg.payload,
                             f"{code}: {d.device_id!r} is not an active registered device")
            return
        if d.kind == "status":
            for model, _raw in d.items:
                assert isinstance(model, DeviceStatus)
                at = datetime.fromtimestamp(d.msg.received_at, UTC)
                out.statuses[device.id] = (model.online, model.battery_pct, model.firmware, at)
            return
        newest: datetime | None = None
        # the time window is the same for every set of the message
        latest, earliest = now + self.skew, device.registered_at - self.skew
        telemetry = d.kind == "telemetry"
        sets = cast(list[tuple[TelemetrySet | HarvestEvent, Any]], d.items)  # as the topic says
        for model, raw in sets:
            # In UTC once per set: pydantic's own tzinfo makes every later comparison and
            # every database dump of the value call back into it.
            ts = model.ts.astimezone(UTC)
            problem = None if earliest <= ts <= latest else self._time_problem(ts, device, now)
            tree = None
            if problem is None and (model.tree is not None or device.plot_id is None):
                tree, problem = self._check_tree(model, device)
            if problem is not None:
                self._reject(out, d.msg, device.id, raw, problem)
                continue
            msg_key = model.key
            key = (device.id, msg_key)
            if key in seen:
                out.in_batch_duplicates += 1
                continue
            seen.add(key)
            if newest is None or ts > newest:
                newest = ts
            if telemetry:
                plot_id = tree.plot_id if tree else device.plot_id
                tree_id = tree.id if tree else None
                rows = [(ts, device.id, plot_id, tree_id, metric, value)
                        for metric, value in model.values.items()]
                out.readings[key] = rows
                out.ledger.append((device.id, msg_key, "telemetry", len(rows)))
            else:
                assert tree is not None  # a harvest event always names its tree
                out.harvests[key] = (ts, device.id, msg_key, device.cooperative_id,
                                     tree.farm_id, tree.plot_id, tree.id, model.cherry_kg,
                                     model.ripeness_pct, model.picker)
                out.ledger.append((device.id, msg_key, "harvest", 1))
        if newest is not None:
            out.newest_ts.append(newest)

    def _time_problem(self, ts: datetime, device: DeviceInfo, now: datetime) -> str:
        if ts > now + self.skew:
            return (f"future_timestamp: {ts.isoformat()} is more than "
                    f"{self.skew.total_seconds():g} s ahead of the server clock")
        # the same tolerance applies on this side: a device's clock may run a little behind
        return (f"before_registration: {ts.isoformat()} is before the device was "
                f"registered ({device.registered_at.isoformat()})")

    def _check_tree(self, model: TelemetrySet | HarvestEvent, device: DeviceInfo):  # type: ignore[no-untyped-def]
        tag = model.tree
        if not tag:
            if device.plot_id is None:
                return None, ("no_plot: the device is bound to no plot or tree; "
                              "name the tree (\"tree\": tag code)")
            return None, None
        tree = self.cache.tree(device.cooperative_id, tag)
        if tree is None:
            return None, f"unknown_tree: no tree tagged {tag!r} in the device's cooperative"
        if device.tree_id is not None and tree.id != device.tree_id:
            return None, f"tree_not_bound: the device is bound to another tree than {tag!r}"
        if device.tree_id is None and device.plot_id is not None and \
                tree.plot_id != device.plot_id:
            return None, f"tree_not_bound: tree {tag!r} is not on the device's plot"
        return tree, None
