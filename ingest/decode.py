"""Payload bytes to JSON values, and any value back to text a dead-letter row can hold.

Everything here runs before the database sees a byte of the payload, so that what
PostgreSQL cannot store (a NUL in text, a lone UTF-16 surrogate, invalid UTF-8) or what
Python cannot walk (thousands of nested arrays) is refused as the device's own error,
with a reason, instead of failing the batch it came in.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic_core import from_json

# Control characters other than tab/newline/carriage return, and lone surrogates (which
# json.loads lets through as `\ud800`, and UTF-8 cannot encode).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class PayloadError(ValueError):
    """The payload cannot be taken as JSON; str() is the dead letter's reason."""


def loads(payload: bytes, *, max_depth: int) -> Any:
    """Parse `payload` strictly: valid UTF-8, no NaN/Infinity (nor numbers beyond float
    range), at most `max_depth` levels of
    arrays and objects, no NUL/control characters or lone surrogates in any string or key.

    Parsed by pydantic-core (jiter), which refuses lone surrogates and invalid UTF-8 and
    stops at its own recursion limit (far below Python's) instead of raising RecursionError.
    """
    try:
        # NaN/Infinity parsed here only to be refused by check_tree with a clearer reason
        doc = from_json(payload, allow_inf_nan=True)
    except ValueError as exc:
        raise PayloadError(f"invalid_json: {exc}") from None
    problem = check_tree(doc, max_depth)
    if problem is not None:
        raise PayloadError(problem)
    return doc


def check_tree(doc: Any, max_depth: int) -> str | None:
    """The first reason `doc` may not go further, or None. Iterative: no recursion limit."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _BAD_CHAR.search(value):
                return "bad_text: a string holds a NUL or control character or a lone surrogate"
        elif isinstance(value, dict):
            if depth > max_depth:
                return f"too_deep: more than {max_depth} levels of nested arrays/objects"
            for key, item in value.items():
                if _BAD_CHAR.search(key):
                    return "bad_text: a key holds a NUL or control character or a lone surrogate"
                stack.append((item, depth + 1))
        elif isinstance(value, float):
            if not math.isfinite(value):
                return (
                    "bad_number: NaN, Infinity or a number beyond +-1.8e308 is no "
                    "number the store can hold"
                )
        elif isinstance(value, list):
            if depth > max_depth:
                return f"too_deep: more than {max_depth} levels of nested arrays/objects"
            stack.extend((item, depth + 1) for item in value)
    return None


def safe_text(value: Any, limit: int) -> tuple[str, str]:
    """`value` (payload bytes, or a parsed JSON value) as text PostgreSQL can store, at most
    `limit` characters, with its encoding: ("text", ...) or ("hex", ...) for bytes that are
    not clean UTF-8. JSON values come back as JSON, escaping what would not store."""
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "hex", bytes(value[: limit // 2]).hex()
        if _BAD_CHAR.search(text):
            return "hex", bytes(value[: limit // 2]).hex()
        return "text", text[:limit]
    text = value if isinstance(value, str) else _dumps(value)
    # escaped as JSON escapes them (\u0000, \ud800): exact inside a JSON string
    return "text", _BAD_CHAR.sub(_escape, text)[:limit]


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):  # not expected after check_tree; never fatal
        return repr(value)
