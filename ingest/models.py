"""Pydantic models of the device payloads (docs/mqtt.md) and the physical bounds of each metric.

These check what a payload says by itself (types, ranges, timestamp format); what depends
on the registry (known device, binding, registration time, clock) is checked in validate.py.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# FIWARE Agrifood names -> (unit, lowest, highest). Bounds are what the sensor could
# physically report in the Central Highlands, wide enough for any healthy device.
METRICS: dict[str, tuple[str, float, float]] = {
    "temperature": ("degC", -40.0, 70.0),
    "relativeHumidity": ("%", 0.0, 100.0),
    "precipitation": ("mm", 0.0, 500.0),
    "soilMoistureVwc": ("%", 0.0, 100.0),
    "soilTemperature": ("degC", -20.0, 70.0),
    "solarRadiation": ("W/m2", 0.0, 1500.0),
    "leafWetness": ("%", 0.0, 100.0),
    "atmosphericPressure": ("hPa", 500.0, 1100.0),
    "windSpeed": ("m/s", 0.0, 75.0),
}

# Epoch milliseconds must lie in this window; a seconds value (10 digits) falls below it
# and is refused instead of being read as January 1970.
_MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01
_MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01


def parse_timestamp(value: Any) -> datetime:
    """RFC 3339 text with an offset, or integer epoch milliseconds, as an aware datetime."""
    if isinstance(value, bool):
        raise ValueError("ts must be RFC 3339 text or epoch milliseconds, not a boolean")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("ts is not a finite number")
        if not _MIN_EPOCH_MS <= value < _MAX_EPOCH_MS:
            raise ValueError("ts as a number must be epoch milliseconds (2000-2100)")
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("ts is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None or "T" not in value.upper():
            raise ValueError("ts must be RFC 3339 with a time and an offset (Z or +07:00)")
        return parsed
    raise ValueError("ts must be RFC 3339 text or epoch milliseconds")


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
MsgId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class _Identified(BaseModel):
    """A reading set or event carries `seq` (int) or `msg_id` (text): its idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int | None = Field(None, ge=0, le=2**63 - 1, strict=True)
    msg_id: MsgId | None = None

    @model_validator(mode="after")
    def _has_id(self) -> _Identified:
        if self.seq is None and self.msg_id is None:
            raise ValueError("every reading set needs seq or msg_id")
        return self

    @property
    def key(self) -> str:
        return self.msg_id if self.msg_id is not None else str(self.seq)


class TelemetrySet(_Identified):
    ts: Timestamp
    values: dict[str, float] = Field(min_length=1, max_length=len(METRICS))
    tree: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _in_range(self) -> TelemetrySet:
        for name, value in self.values.items():
            bounds = METRICS.get(name)
            if bounds is None:
                raise ValueError(f"unknown metric {name!r} (known: {', '.join(METRICS)})")
            unit, low, high = bounds
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name}={value} outside {low:g}..{high:g} {unit}")
        return self


class HarvestEvent(_Identified):
    ts: Timestamp
    tree: str = Field(min_length=1, max_length=64)
    cherry_kg: float = Field(ge=0, le=1000, allow_inf_nan=False)
    ripeness_pct: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)
    picker: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class DeviceStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    online: bool
    battery_pct: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)
    firmware: str | None = Field(None, max_length=32)


def error_text(exc: Exception) -> str:
    """A pydantic ValidationError as one short line: `field: message; field: message`."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    parts = []
    for err in errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
