"""Turning a form's text fields into the values the API's schemas take: ids, dates in the
console's time zone, kilograms; each refusal a ValidationFailed naming the field, as the
API words it. And the API's schemas' own refusals (pydantic) in the API's words."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from coffeetrace.errors import ValidationFailed


def text(value: str | None, field: str, max_length: int = 200) -> str | None:
    """Trimmed text, None for nothing; refused with NUL or beyond `max_length`."""
    if value is None or not value.strip():
        return None
    if "\x00" in value or len(value) > max_length:
        raise ValidationFailed(
            f"{field}: at most {max_length} characters, without NUL", field=field
        )
    return value.strip()


def uuid(value: str | None, field: str) -> UUID | None:
    shown = text(value, field, 100)
    if shown is None:
        return None
    try:
        return UUID(shown)
    except ValueError:
        raise ValidationFailed(f"{field}: not an id this console gave", field=field) from None


def uuids(values: list[str], field: str, limit: int) -> list[UUID]:
    if len(values) > limit:
        raise ValidationFailed(f"{field}: at most {limit} at once", field=field, limit=limit)
    found = [uuid(v, field) for v in values]
    return [v for v in found if v is not None]


def day(value: str | None, field: str) -> date | None:
    shown = text(value, field, 20)
    if shown is None:
        return None
    try:
        return date.fromisoformat(shown)
    except ValueError:
        raise ValidationFailed(f"{field}: a date such as 2025-11-10", field=field) from None


def day_start(value: date | None, zone: ZoneInfo, *, next_day: bool = False) -> datetime | None:
    """Midnight of the day (of the next one with `next_day`: an inclusive 'to' date)."""
    if value is None:
        return None
    if next_day:
        value = value + timedelta(days=1)
    return datetime.combine(value, time(0), tzinfo=zone)


def local_time(value: str | None, field: str, zone: ZoneInfo) -> datetime | None:
    """A `datetime-local` field (2025-11-30T14:00) read in the console's time zone."""
    shown = text(value, field, 40)
    if shown is None:
        return None
    try:
        parsed = datetime.fromisoformat(shown)
    except ValueError:
        raise ValidationFailed(
            f"{field}: a date and time such as 2025-11-30T14:00", field=field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def kg(value: str | None, field: str) -> float | None:
    """Kilograms as written (a decimal comma is read as a point); the API's schema checks
    their range."""
    shown = text(value, field, 30)
    if shown is None:
        return None
    try:
        amount = float(shown.replace(",", "."))
    except ValueError:
        raise ValidationFailed(
            f"{field}: a number of kilograms such as 120.5", field=field
        ) from None
    if not math.isfinite(amount):
        raise ValidationFailed(f"{field}: a number of kilograms such as 120.5", field=field)
    return amount


def schema_error(exc: ValidationError) -> ValidationFailed:
    """A refusal of the API's request schema, as the API answers it ("field: message")."""
    problems: list[dict[str, Any]] = [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    return ValidationFailed(f"{first['field']}: {first['message']}", problems=problems)
