"""The canonical leaf of one ingested record (a harvest event, a sensor reading set): the
bytes a batch's Merkle tree commits to (trace/batches.py), reproducible from the stored
rows alone.

Ingest computes each record's leaf from the values it writes; verification recomputes it
from what PostgreSQL gives back. Both give the same bytes: every field is normalised
before it is encoded (a Decimal at its column's scale, a time in UTC microseconds, a
UUID in its canonical text), so Decimal("4.2") and Decimal("4.200"), or a time read in
another session time zone, make the same leaf.

Byte format, version 1 (US = the byte 0x1f, the ASCII unit separator):

    harvest:      b"ct.harvest.v1" US device_id US msg_id US time US cooperative_id
                  US farm_id US plot_id US tree_id US cherry_kg US ripeness_pct
                  US picker_code
    reading set:  b"ct.reading_set.v1" US device_id US msg_id US time US plot_id
                  US tree_id US n US metric_1 US ... US metric_n US values

- text (device_id, msg_id, picker_code, metric names): UTF-8. The bytes 0x00, 0x1b and
  0x1f, which ingest never writes (its ids are printable ASCII), are escaped as 0x1b
  followed by the byte, so a field never holds a bare separator.
- null (ripeness_pct, picker_code, a reading set's tree_id): the single byte 0x00, which
  no encoded text can be (PostgreSQL text cannot hold NUL, and it is escaped anyway);
  the empty text is the empty field.
- time: microseconds since 1970-01-01T00:00:00Z as a decimal integer (a leading "-"
  before 1970): timestamptz's own resolution.
- UUIDs: the 36-character lowercase hyphenated form.
- cherry_kg, ripeness_pct: decimal text with exactly the column's scale, 3 and 2
  (numeric(10, 3), numeric(5, 2)): "4.200", "90.00"; no exponent, no sign on zero.
  A float is first written as its shortest repr and rounded half away from zero, as
  PostgreSQL rounds the text ingest sends it (`scaled`); ingest COPYs that very text.
- a reading set: n, the number of readings, as a decimal integer; the metric names
  sorted (by their UTF-8 bytes; equal names, which only stored rows can have, by value);
  then `values`, the n values in that order as IEEE 754 binary64, big-endian, 8 bytes
  each (struct ">nd"): exact through float8, and the last field, so its bytes need no
  escaping (its length is 8n).

The leaf is merkle.leaf_hash(bytes), SHA-256(0x00 || bytes). A later format gets a new
tag; leaves of version 1 keep being read as version 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from hashlib import sha256
from typing import Any
from uuid import UUID

from coffeetrace.trace.merkle import leaf_hash

HARVEST_TAG = b"ct.harvest.v1"
READING_SET_TAG = b"ct.reading_set.v1"
US = b"\x1f"
NULL = b"\x00"
_ESCAPE = 0x1B
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_QUANTA = {3: Decimal("0.001"), 2: Decimal("0.01")}
_ZEROS = {3: "0.000", 2: "0.00"}
_UUID_TEXT: dict[
    int | str, bytes
] = {}  # a worker sees the same few plots and trees again and again
_UUID_CACHE_MAX = 100_000
_PACKERS: dict[int, struct.Struct] = {}
_NAMES: dict[tuple[str, ...], bytes] = {}
_DEVICES: dict[str, bytes] = {}  # device ids, encoded


def _text(value: str) -> bytes:
    if value.isascii() and value.isprintable():  # every id ingest writes: nothing to escape
        return value.encode()
    raw = value.encode("utf-8", "surrogatepass")
    if b"\x00" in raw or b"\x1b" in raw or b"\x1f" in raw:
        raw = bytes(b for c in raw for b in ((_ESCAPE, c) if c in (0x00, 0x1B, 0x1F) else (c,)))
    return raw


def _opt_text(value: str | None) -> bytes:
    return NULL if value is None else _text(value)


def _uuid(value: UUID | str) -> bytes:
    # keyed by the UUID's int (hashed in C; a UUID's __hash__ is Python code), or the text
    key: int | str = value.int if isinstance(value, UUID) else value
    cached = _UUID_TEXT.get(key)
    if cached is not None:
        return cached
    text = str(value if isinstance(value, UUID) else UUID(str(value))).encode()
    if len(_UUID_TEXT) >= _UUID_CACHE_MAX:
        _UUID_TEXT.clear()
    _UUID_TEXT[key] = text
    return text


def time_us(value: datetime | int) -> int:
    """Microseconds since the Unix epoch of an aware datetime (an int is taken as such)."""
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        raise ValueError("record times must carry a time zone")
    return (value - EPOCH) // _ONE_US


def scaled(value: Decimal | float | int | str | None, places: int) -> str | None:
    """The canonical text of a numeric(p, `places`) value, as PostgreSQL stores it: rounded
    half away from zero to `places` digits ("4.2" -> "4.200"), no exponent, "0.000" for
    any zero. None stays None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, float):
        d = Decimal(repr(value))  # what psycopg would have sent PostgreSQL as text
    else:
        d = Decimal(value)
    if not d.is_finite():
        return str(d)  # NaN or infinity: only a value edited by hand
    q = d.quantize(_QUANTA[places], rounding=ROUND_HALF_UP)
    return f"{q:f}" if q else _ZEROS[places]


def harvest_data(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    cooperative_id: UUID | str,
    farm_id: UUID | str,
    plot_id: UUID | str,
    tree_id: UUID | str,
    cherry_kg: Decimal | float | str,
    ripeness_pct: Decimal | float | str | None,
    picker_code: str | None,
) -> bytes:
    """The canonical bytes (version 1) of one harvest event; see the module docstring."""
    kg = scaled(cherry_kg, 3)
    assert kg is not None  # the column is not null
    ripeness = scaled(ripeness_pct, 2)
    return US.join(
        (
            HARVEST_TAG,
            _text(device_id),
            _text(msg_id),
            str(time_us(time)).encode(),
            _uuid(cooperative_id),
            _uuid(farm_id),
            _uuid(plot_id),
            _uuid(tree_id),
            kg.encode(),
            NULL if ripeness is None else ripeness.encode(),
            _opt_text(picker_code),
        )
    )


def harvest_leaf_of(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    cooperative_id: UUID | str,
    farm_id: UUID | str,
    plot_id: UUID | str,
    tree_id: UUID | str,
    cherry_kg: Decimal | float | str,
    ripeness_pct: Decimal | float | str | None,
    picker_code: str | None,
) -> bytes:
    """The 32-byte leaf hash of one harvest event, from its field values."""
    return leaf_hash(
        harvest_data(
            device_id,
            msg_id,
            time,
            cooperative_id,
            farm_id,
            plot_id,
            tree_id,
            cherry_kg,
            ripeness_pct,
            picker_code,
        )
    )


def harvest_leaf(row: Mapping[str, Any]) -> bytes:
    """The 32-byte leaf hash of a harvest_events row (a mapping of its columns)."""
    return harvest_leaf_of(
        row["device_id"],
        row["msg_id"],
        row["time"],
        row["cooperative_id"],
        row["farm_id"],
        row["plot_id"],
        row["tree_id"],
        row["cherry_kg"],
        row["ripeness_pct"],
        row["picker_code"],
    )


def _metric_names(metrics: tuple[str, ...]) -> bytes:
    """n US metric_1 US ... US metric_n, cached: a device sends the same metrics each time."""
    names = _NAMES.get(metrics)
    if names is None:
        names = US.join((str(len(metrics)).encode(), *map(_text, metrics)))
        if len(_NAMES) >= _UUID_CACHE_MAX:
            _NAMES.clear()
        _NAMES[metrics] = names
    return names


def pack_values(values: Sequence[float]) -> bytes:
    """The values as IEEE 754 binary64, big-endian, 8 bytes each (the last field of a
    reading set's bytes; also each value's field in a binary COPY)."""
    n = len(values)
    packer = _PACKERS.get(n)
    if packer is None:
        packer = _PACKERS.setdefault(n, struct.Struct(f">{n}d"))
    return packer.pack(*values)


def sorted_values(
    values: Mapping[str, float] | Iterable[tuple[str, float]],
) -> tuple[tuple[str, ...], bytes]:
    """(metric names, packed values) of a {metric: value} mapping or of (metric, value)
    pairs, in the leaf's order: by metric, equal metrics (only stored rows can have them)
    by value."""
    # `type(...) is dict` first: ingest's sets are dicts, and an isinstance check against
    # the Mapping ABC costs more than the rest of this function for a 4-metric set
    if type(values) is dict or isinstance(values, Mapping):  # each metric once
        metrics = tuple(sorted(values))
        return metrics, pack_values([values[m] for m in metrics])
    pairs = sorted(values)
    if not pairs:
        return (), b""
    metrics, numbers = zip(*pairs, strict=True)
    return metrics, pack_values(numbers)


def reading_set_data_packed(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    plot_id: UUID | str,
    tree_id: UUID | str | None,
    metrics: tuple[str, ...],
    packed: bytes,
) -> bytes:
    """reading_set_data from `sorted_values`' result (ingest computes it once per set for
    both the leaf and the COPY rows)."""
    device = _DEVICES.get(device_id)
    if device is None:
        device = _text(device_id)
        if len(_DEVICES) >= _UUID_CACHE_MAX:
            _DEVICES.clear()
        _DEVICES[device_id] = device
    return US.join(
        (
            READING_SET_TAG,
            device,
            _text(msg_id),
            str(time if isinstance(time, int) else time_us(time)).encode(),
            _uuid(plot_id),
            NULL if tree_id is None else _uuid(tree_id),
            _NAMES.get(metrics) or _metric_names(metrics),
            packed,
        )
    )


class ReadingSetLeaves:
    """The leaves of reading sets of one device, plot, tree and metric list (a device sends
    the same shape set after set): the fields around the key, the time and the values
    are encoded once, so a set's leaf is one concatenation and one hash. Gives the leaf
    of `reading_set_leaf_packed` for the same fields."""

    __slots__ = ("_head", "_mid")

    def __init__(
        self,
        device_id: str,
        plot_id: UUID | str,
        tree_id: UUID | str | None,
        metrics: tuple[str, ...],
    ) -> None:
        # 0x00 (leaf_hash's prefix) tag US device US | key US time | US plot US tree US names US
        self._head = b"\x00" + US.join((READING_SET_TAG, _text(device_id), b""))
        self._mid = US.join(
            (
                b"",
                _uuid(plot_id),
                NULL if tree_id is None else _uuid(tree_id),
                _NAMES.get(metrics) or _metric_names(metrics),
                b"",
            )
        )

    def leaf(self, msg_id: str, time_us: int, packed: bytes) -> bytes:
        """The 32-byte leaf of the set `msg_id` at `time_us`, `packed` as sorted_values'."""
        return sha256(
            b"".join((self._head, _text(msg_id), US, str(time_us).encode(), self._mid, packed))
        ).digest()


def reading_set_data(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    plot_id: UUID | str,
    tree_id: UUID | str | None,
    values: Iterable[tuple[str, float]],
) -> bytes:
    """The canonical bytes (version 1) of one reading set; `values` are (metric, value)
    pairs in any order (a dict's items will do)."""
    metrics, packed = sorted_values(values)
    return reading_set_data_packed(device_id, msg_id, time, plot_id, tree_id, metrics, packed)


def reading_set_leaf_packed(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    plot_id: UUID | str,
    tree_id: UUID | str | None,
    metrics: tuple[str, ...],
    packed: bytes,
) -> bytes:
    """reading_set_leaf from `sorted_values`' result."""
    return leaf_hash(
        reading_set_data_packed(device_id, msg_id, time, plot_id, tree_id, metrics, packed)
    )


def reading_set_leaf(
    device_id: str,
    msg_id: str,
    time: datetime | int,
    plot_id: UUID | str,
    tree_id: UUID | str | None,
    values: Iterable[tuple[str, float]],
) -> bytes:
    """The 32-byte leaf hash of one reading set: the readings one telemetry set stored (one
    sensor_readings row per metric), with the set's device, key, time, plot and tree."""
    return leaf_hash(reading_set_data(device_id, msg_id, time, plot_id, tree_id, values))
