"""The sensor_readings rows of one reading set in PostgreSQL's binary COPY format, built
once per set instead of one Python tuple and one `write_row` per reading.

A reading set of n metrics is n rows sharing their first four fields (time, device, plot,
tree); the values are the big-endian doubles the set's leaf packs anyway
(trace/records.py), so each row is the shared prefix, the metric's field and 8 bytes of
that packing. The bytes are those PostgreSQL's own binary COPY writes for these columns
(tests/ingest/test_copyrows.py compares them).

Binary COPY (PostgreSQL docs, "COPY ... Binary Format"): a header (SIGNATURE), then per
row an int16 field count and per field an int32 length (-1: null) and the value's bytes
(timestamptz: int64 microseconds since 2000-01-01 UTC; uuid: 16 bytes; text: UTF-8;
float8: IEEE 754 big-endian), then the trailer (TRAILER).
"""

from __future__ import annotations

import struct
from uuid import UUID

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_TIME = struct.Struct(">hiq")  # field count 6, then the time field (length 8, int64)
_NULL = b"\xff\xff\xff\xff"
_UUID_LEN = b"\x00\x00\x00\x10"
_F8_LEN = b"\x00\x00\x00\x08"
_CACHE_MAX = 100_000
_TEXT: dict[str, bytes] = {}  # device ids, metric names -> their field (length + UTF-8)
_UUIDS: dict[int, bytes] = {}  # plot and tree ids (as ints) -> their field
_TAILS: dict[tuple[str, ...], list[bytes]] = {}  # a set's metrics -> each one's fields


def _text_field(value: str) -> bytes:
    field = _TEXT.get(value)
    if field is None:
        data = value.encode()
        field = struct.pack(">i", len(data)) + data
        if len(_TEXT) >= _CACHE_MAX:
            _TEXT.clear()
        _TEXT[value] = field
    return field


def _uuid_field(value: UUID | None) -> bytes:
    if value is None:
        return _NULL
    key = value.int  # an int hashes in C; a UUID's __hash__ is Python code
    field = _UUIDS.get(key)
    if field is None:
        field = _UUID_LEN + value.bytes
        if len(_UUIDS) >= _CACHE_MAX:
            _UUIDS.clear()
        _UUIDS[key] = field
    return field


def reading_rows(
    time_us: int,
    device_id: str,
    plot_id: UUID,
    tree_id: UUID | None,
    metrics: tuple[str, ...],
    packed: bytes,
) -> bytes:
    """The binary COPY rows (time, device_id, plot_id, tree_id, metric, value) of one set:
    `time_us` in Unix microseconds, `packed` the values of `metrics` in that order as
    big-endian doubles (8 bytes each)."""
    prefix = (
        _TIME.pack(6, 8, time_us - _PG_EPOCH_US)
        + (_TEXT.get(device_id) or _text_field(device_id))
        + (_UUIDS.get(plot_id.int) or _uuid_field(plot_id))
        + (_NULL if tree_id is None else _UUIDS.get(tree_id.int) or _uuid_field(tree_id))
    )
    tails = _TAILS.get(metrics) or _tails(metrics)
    if len(tails) == 1:
        return prefix + tails[0] + packed
    # the prefix between the rows' tails, and in front of the first (one join, no list of
    # 3 parts a row)
    return prefix + prefix.join([tail + packed[8 * i : 8 * i + 8] for i, tail in enumerate(tails)])


def _tails(metrics: tuple[str, ...]) -> list[bytes]:
    """Per metric its field and the length of the value's: what follows the prefix."""
    tails = [_text_field(m) + _F8_LEN for m in metrics]
    if len(_TAILS) >= _CACHE_MAX:
        _TAILS.clear()
    _TAILS[metrics] = tails
    return tails
