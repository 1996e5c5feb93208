"""Pydantic models of the device payloads (docs/mqtt.md) and the physical bounds of each metric.

These check what a payload says by itself (types, ranges, timestamp format); what depends
on the registry (known device, binding, registration time, clock) is checked in validate.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

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

# Bounds and timestamp formats are constraints that pydantic-core checks by itself, not
# Python validators: an offline buffer holds hundreds of reading sets, and calling Python
# for each set's timestamp and values was most of the consumer's validation time.
# error_text() turns pydantic's errors into the project's messages.

# Timestamps: RFC 3339 text with an offset, or epoch milliseconds. Numbers are read as
# milliseconds (`val_temporal_unit`) and must fall in 2000-2100, so an epoch-seconds value
# (10 digits) reads as January 1970 and is refused instead of being stored as such.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)
Timestamp = Annotated[AwareDatetime, Field(ge=TS_MIN, lt=TS_MAX)]
MsgId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
# Free text of a device (tree tags, firmware): no control characters, which PostgreSQL
# (NUL) or a dead-letter row could not hold. Lone surrogates never reach a model: JSON
# with them is refused by the parser (decode.py).
Text = r"^[^\x00-\x1f\x7f]+$"
# Numbers are JSON numbers, never booleans or strings ("temperature": true is refused,
# not stored as 1.0): strict floats still take JSON integers.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]

_TS_HELP = (
    "ts must be RFC 3339 with a time and an offset (Z or +07:00), or epoch milliseconds (2000-2100)"
)

# A reading set's values: any of the known metrics, each within its bounds, nothing else.
# Built from METRICS so that the bounds live in one table; to type checkers, a plain dict.
if TYPE_CHECKING:
    MetricValues = dict[str, float]
else:
    MetricValues = with_config(ConfigDict(extra="forbid"))(
        TypedDict(
            "MetricValues",
            {
                name: Annotated[Number, Field(ge=low, le=high)]
                for name, (_unit, low, high) in METRICS.items()
            },
            total=False,
        )
    )

_PAYLOAD_CONFIG = ConfigDict(extra="forbid", frozen=True, val_temporal_unit="milliseconds")


class _Identified(BaseModel):
    """A reading set or event carries `seq` (int) or `msg_id` (text): its idempotency key."""

    model_config = _PAYLOAD_CONFIG

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
    values: Annotated[MetricValues, Field(min_length=1)]
    tree: str | None = Field(None, min_length=1, max_length=64, pattern=Text)


class HarvestEvent(_Identified):
    ts: Timestamp
    tree: str = Field(min_length=1, max_length=64, pattern=Text)
    cherry_kg: Number = Field(ge=0, le=1000)
    ripeness_pct: Number | None = Field(None, ge=0, le=100)
    picker: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class DeviceStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    online: bool = Field(strict=True)
    battery_pct: Number | None = Field(None, ge=0, le=100)
    firmware: str | None = Field(None, max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")


def error_text(exc: Exception) -> str:
    """A pydantic ValidationError as one short line: `field: message; field: message`."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    return "; ".join(_one_error(err) for err in errors()[:3])


def _one_error(err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if len(loc) == 2 and loc[0] == "values":  # one metric of a reading set
        name = str(loc[1])
        if kind == "extra_forbidden":
            return f"values: unknown metric {name!r} (known: {', '.join(METRICS)})"
        if name in METRICS and kind in ("less_than_equal", "greater_than_equal", "finite_number"):
            unit, low, high = METRICS[name]
            return f"values: {name}={err.get('input')} outside {low:g}..{high:g} {unit}"
    if loc == ("ts",) and kind != "missing":
        return f"{_TS_HELP} (got {err.get('input')!r})"
    where = ".".join(str(p) for p in loc) or "payload"
    if kind in ("float_type", "int_type"):
        return f"{where}: must be a JSON number (got {_json_kind(err.get('input'))})"
    if kind == "bool_type":
        return f"{where}: must be true or false (got {_json_kind(err.get('input'))})"
    if kind == "string_type":
        return f"{where}: must be a JSON string (got {_json_kind(err.get('input'))})"
    if kind == "string_pattern_mismatch" and loc[-1:] in (("tree",), ("firmware",)):
        return f"{where}: must not hold control characters"
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {msg}"


def _json_kind(value: Any) -> str:
    """How a refused value looked in the JSON, for error messages."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return {dict: "an object", list: "an array", type(None): "null"}.get(type(value), "a value")
