"""Pure unit tests of the payload models and topic parsing (no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from coffeetrace.ingest.models import METRICS, HarvestEvent, TelemetrySet, error_text
from coffeetrace.ingest.topics import parse_topic, subscription


def _ts(value: object) -> datetime:
    return TelemetrySet.model_validate({"seq": 1, "ts": value, "values": {"temperature": 20}}).ts


def test_timestamps_rfc3339_and_epoch_ms_agree() -> None:
    a = _ts("2026-06-01T08:10:00+07:00")
    b = _ts("2026-06-01T01:10:00Z")
    c = _ts(int(datetime(2026, 6, 1, 1, 10, tzinfo=UTC).timestamp() * 1000))
    assert a == b == c
    assert a.utcoffset() == timedelta(hours=7)
    # the same from JSON, as devices send it
    raw = b'{"seq": 1, "ts": 1780276200000, "values": {"temperature": 20}}'
    assert TelemetrySet.model_validate_json(raw).ts == c


@pytest.mark.parametrize(
    "bad",
    [
        "2026-06-01T08:10:00",
        "2026-06-01",
        "soon",
        True,
        1780000000,
        float("nan"),
        None,
        [1],
        4_102_444_800_000,
    ],
)
def test_timestamps_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        _ts(bad)
    assert error_text(info.value).startswith("ts must be RFC 3339")


def test_error_text_names_metric_bounds_and_units() -> None:
    ts = "2026-06-01T08:10:00+07:00"
    with pytest.raises(ValidationError) as info:
        TelemetrySet.model_validate_json(
            f'{{"seq": 1, "ts": "{ts}", "values": {{"soilMoistureVwc": 140}}}}'
        )
    assert error_text(info.value) == "values: soilMoistureVwc=140 outside 0..100 %"
    with pytest.raises(ValidationError) as info:
        TelemetrySet(seq=1, ts=ts, values={"soilPh": 6})
    assert error_text(info.value).startswith("values: unknown metric 'soilPh' (known: ")
    with pytest.raises(ValidationError) as info:
        TelemetrySet(seq=1, ts=ts, values={})
    assert error_text(info.value).startswith("values: ")


def test_every_metric_bound_is_enforced_at_both_ends() -> None:
    ts = "2026-06-01T08:10:00+07:00"
    for name, (_unit, low, high) in METRICS.items():
        TelemetrySet(seq=1, ts=ts, values={name: low})
        TelemetrySet(seq=1, ts=ts, values={name: high})
        for outside in (low - 0.1, high + 0.1):
            with pytest.raises(ValidationError, match=name):
                TelemetrySet(seq=1, ts=ts, values={name: outside})


def test_idempotency_key_is_seq_or_msg_id() -> None:
    ts = datetime.now(UTC).isoformat()
    assert TelemetrySet(seq=42, ts=ts, values={"temperature": 20}).key == "42"
    assert TelemetrySet(msg_id="ab-1", ts=ts, values={"temperature": 20}).key == "ab-1"
    with pytest.raises(ValidationError, match="seq or msg_id"):
        TelemetrySet(ts=ts, values={"temperature": 20})
    with pytest.raises(ValidationError):
        TelemetrySet(seq="42", ts=ts, values={"temperature": 20})  # strict: a number


def test_harvest_weights_and_ripeness() -> None:
    ts = "2026-11-20T09:00:00+07:00"
    ok = HarvestEvent(seq=1, ts=ts, tree="T-1", cherry_kg=0, ripeness_pct=100, picker="PK-1")
    assert ok.cherry_kg == 0
    for bad in (
        {"cherry_kg": -0.1},
        {"cherry_kg": 4, "ripeness_pct": 101},
        {"cherry_kg": 4, "picker": "Nguyễn Văn A"},
        {"cherry_kg": 4, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            HarvestEvent(seq=1, ts=ts, tree="T-1", **bad)


def test_topics() -> None:
    info = parse_topic("coffeetrace/v1", "coffeetrace/v1/devices/soil-node-ab12/telemetry")
    assert info is not None and (info.device_id, info.kind) == ("soil-node-ab12", "telemetry")
    for bad in (
        "coffeetrace/v1/devices/soil-node-ab12/weather",
        "coffeetrace/v1/devices/soil-node-ab12/telemetry/extra",
        "coffeetrace/v2/devices/soil-node-ab12/telemetry",
        "coffeetrace/v1/devices/a b/telemetry",
    ):
        assert parse_topic("coffeetrace/v1", bad) is None
    assert subscription("p/v1") == "p/v1/devices/+/+"
    assert subscription("p/v1", "ingest") == "$share/ingest/p/v1/devices/+/+"
