"""The sensor_readings rows of one reading set in PostgreSQL's binary COPY format, built
once per set instead of one Python tuple and one `write_row` per reading.

A reading set of n metrics is n rows sharing their first four fields (time, device, plot,
tree); of each row only the time and the value change from one set of a device to the
next, so a `RowShape` (device, plot, tree, metrics) packs a set's rows in one
`struct.pack` of the time and the values. The bytes are those PostgreSQL's own binary
COPY writes for these columns (tests/ingest/test_copyrows.py compares them).

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
_NULL = b"\xff\xff\xff\xff"
_UUID_LEN = b"\x00\x00\x00\x10"
_F8_LEN = b"\x00\x00\x00\x08"
_CACHE_MAX = 100_000
_TEXT: dict[str, bytes] = {}  # device ids, metric names -> their field (length + UTF-8)
_UUIDS: dict[int, bytes] = {}  # plot and tree ids (as ints) -> their field


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


class RowShape:
    """The binary COPY rows of reading sets of one device, plot, tree and metric list (a
    device sends the same shape set after set): all but the time and the values is
    constant, so a set's rows are one `struct.pack` of those into a cached format."""

    __slots__ = ("_n", "_struct", "_template")

    def __init__(
        self, device_id: str, plot_id: UUID, tree_id: UUID | None, metrics: tuple[str, ...]
    ) -> None:
        fixed = _text_field(device_id) + _uuid_field(plot_id) + _uuid_field(tree_id)
        consts = [fixed + _text_field(m) + _F8_LEN for m in metrics]
        # per row: field count 6, the time's length 8, the time, the constant fields, the value
        self._struct = struct.Struct(">" + "".join(f"hiq{len(c)}sd" for c in consts))
        self._template: list[object] = [x for c in consts for x in (6, 8, 0, c, 0.0)]
        self._n = len(metrics)

    def rows(self, time_us: int, values: list[float]) -> bytes:
        """The rows of one set at `time_us` (Unix microseconds), `values` in metric order."""
        args = self._template.copy()
        args[2::5] = [time_us - _PG_EPOCH_US] * self._n
        args[4::5] = values
        return self._struct.pack(*args)


_SHAPES: dict[tuple[str, int, int | None, tuple[str, ...]], RowShape] = {}


def row_shape(
    device_id: str, plot_id: UUID, tree_id: UUID | None, metrics: tuple[str, ...]
) -> RowShape:
    """The cached RowShape of these fields."""
    key = (device_id, plot_id.int, None if tree_id is None else tree_id.int, metrics)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _CACHE_MAX:
            _SHAPES.clear()
        shape = _SHAPES[key] = RowShape(device_id, plot_id, tree_id, metrics)
    return shape


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
    values = list(struct.unpack(f">{len(metrics)}d", packed))
    return row_shape(device_id, plot_id, tree_id, metrics).rows(time_us, values)
