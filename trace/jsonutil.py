"""Canonical JSON: the one byte form that hashes and signatures are computed over."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic_core import from_json

_PLAIN = frozenset({str, int, bool, type(None)})
JSONB_EXPONENT_FLOAT = 1e16  # from here on Python writes floats with an exponent


def jsonb_float(value: float) -> float | int:
    """A float as jsonb gives it back: jsonb keeps numbers as numeric, which has no
    negative zero and writes 1e+16 as 10000000000000000 (an integer to Python)."""
    if value == 0:
        return 0.0
    if abs(value) >= JSONB_EXPONENT_FLOAT and value == value and abs(value) != float("inf"):
        return int(value)
    return value


def jsonable(value: Any) -> Any:
    """The value with UUIDs, Decimals and datetimes turned into JSON-native strings, and
    floats as jsonb writes them (jsonb_float), so that a value stored as jsonb gives back
    the same canonical JSON.

    Decimals become strings so that kilograms survive a jsonb round trip exactly.
    """
    # exact-type fast paths (the same results as the checks below): registry versions
    # pass payloads of thousands of records through here
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return jsonb_float(value)
    if kind is dict:
        return {
            (k if type(k) is str else str(k)): (v if type(v) in _PLAIN else jsonable(v))
            for k, v in value.items()
        }
    if kind is list:
        return [v if type(v) in _PLAIN else jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return jsonb_float(value)
    return value


def iso_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def native_canonical_json(value: Any) -> str:
    """canonical_json's text of a value that is JSON-native already (as jsonb gives it
    back): the same bytes, without the pass that converts UUIDs, Decimals and dates."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal documents give equal bytes."""
    return json.dumps(
        jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _json_native(value: Any) -> Any:
    """json.dumps' `default`: what jsonable makes of a UUID, Decimal, datetime or date."""
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# Where json.dumps writes a float unlike jsonb gives it back (jsonb_float): a negative
# zero ("-0.0" not followed by another digit) or an exponent ("1e+16"). The pattern may
# also match inside a string; that only sends the value down the exact, slower path.
_NOT_AS_JSONB = re.compile(r"-0\.0(?![0-9])|[0-9]e\+")


def canonical_json_str_keys(value: Any) -> str:
    """canonical_json's text, for a value whose every dict key is a str (the caller knows
    by construction: json.dumps would sort other keys unlike jsonable, so they must not
    come here). One C pass instead of jsonable's walk in Python (seeding records a
    million trees' facts); the walk is taken only where the text could differ from
    canonical_json's: floats that jsonb rewrites."""
    text = json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_native,
    )
    if _NOT_AS_JSONB.search(text):
        return canonical_json(value).decode("utf-8")
    return text


def loads_bounded(data: bytes | str, *, max_depth: int) -> Any:
    """JSON a client sent (an uploaded file, a captured document), parsed without Python
    recursion: pydantic-core (jiter) refuses invalid UTF-8, lone surrogates and NaN and
    stops at its own recursion limit, where json.loads raised RecursionError (a 500);
    then at most `max_depth` levels of arrays and objects are taken. ValueError says why."""
    doc = from_json(data)
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:  # iterative, for the same reason
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise ValueError(f"more than {max_depth} levels of nested arrays and objects")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return doc
