"""Device streams and faults, without a broker: deterministic, counted, and honest about
what a good record and a malformed message are (checked with ingest's own models)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from coffeetrace.ingest.models import HarvestEvent, TelemetrySet
from coffeetrace.simulators.faults import FaultConfig
from coffeetrace.simulators.fleet import FleetRun, count
from coffeetrace.simulators.physics import LOCAL
from coffeetrace.simulators.plan import WorldSpec, make_plan
from coffeetrace.simulators.stats import SimStats
from coffeetrace.simulators.streams import DeviceFaults, Timing

START = datetime(2025, 9, 1, tzinfo=LOCAL)
END = datetime(2026, 1, 10, tzinfo=LOCAL)


def run_of(faults: FaultConfig, seed: int = 3, uplink_s: int = 0) -> FleetRun:
    plan = make_plan(WorldSpec(coop_code="streams", seed=seed, farms=3, harvest_trees_per_plot=12))
    timing = Timing(
        start=START,
        end=END,
        soil_interval_s=4 * 3600,
        weather_interval_s=3 * 3600,
        uplink_s=uplink_s,
    )
    return FleetRun(plan, timing, faults)


def digest(run: FleetRun) -> tuple[str, SimStats]:
    h = hashlib.sha256()
    stats = SimStats()
    for sent in run.messages():
        count(stats, sent)
        h.update(f"{sent.message.device_id}/{sent.message.channel}/{sent.label}".encode())
        h.update(sent.message.payload)
    return h.hexdigest(), stats


def test_same_seed_same_messages() -> None:
    first, stats1 = digest(run_of(FaultConfig.all_on()))
    second, stats2 = digest(run_of(FaultConfig.all_on()))
    assert first == second and stats1 == stats2
    other, _ = digest(run_of(FaultConfig.all_on(), seed=4))
    assert other != first


def test_no_faults_means_no_fault_counters() -> None:
    _, stats = digest(run_of(FaultConfig.none()))
    assert stats.unique_records > 1000 and stats.unique_harvest_records > 0
    for name in (
        "duplicate_messages",
        "malformed_messages",
        "reordered_messages",
        "offline_periods",
        "flushed_records",
        "repeated_records",
        "duplicate_records",
        "skewed_records",
        "batched_messages",
    ):
        assert getattr(stats, name) == 0, name
    assert stats.good_messages == stats.unique_records


def records_of(payload: bytes) -> list[dict]:
    doc = json.loads(payload)
    return doc if isinstance(doc, list) else [doc]


def test_every_fault_happens_and_counters_match_the_payloads() -> None:
    run = run_of(FaultConfig.all_on())
    stats = SimStats()
    seen: Counter[tuple[str, int]] = Counter()
    malformed = 0
    last_seq: dict[str, int] = {}
    out_of_order = 0
    for sent in run.messages():
        count(stats, sent)
        m = sent.message
        if sent.label == "status":
            continue
        if sent.label == "malformed":
            malformed += 1
            model = HarvestEvent if m.channel == "harvest" else TelemetrySet
            with pytest.raises((ValidationError, ValueError, UnicodeDecodeError)):
                doc = json.loads(m.payload)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
                model.model_validate(doc)
                if doc.get("tree", "").startswith("NO-SUCH-TREE"):
                    raise ValueError("unknown tree")  # only the registry can tell
            continue
        model = HarvestEvent if m.channel == "harvest" else TelemetrySet
        for rec in records_of(m.payload):
            parsed = model.model_validate(rec)  # every good record is valid as it stands
            assert parsed.ts <= datetime.now(LOCAL)
            seen[(m.device_id, rec["seq"])] += 1
            if rec["seq"] < last_seq.get(m.device_id, 0):
                out_of_order += 1
            last_seq[m.device_id] = max(rec["seq"], last_seq.get(m.device_id, 0))
    assert len(seen) == stats.unique_records
    assert sum(seen.values()) == stats.unique_records + stats.duplicate_records
    assert malformed == stats.malformed_messages == sum(stats.malformed_by_kind.values())
    assert out_of_order > 0
    for name in (
        "duplicate_messages",
        "malformed_messages",
        "reordered_messages",
        "offline_periods",
        "flushed_records",
        "repeated_records",
        "skewed_records",
        "batched_messages",
    ):
        assert getattr(stats, name) > 0, name
    assert len(stats.malformed_by_kind) >= 5


def test_clock_skew_stays_within_its_bound() -> None:
    faults = FaultConfig(device=DeviceFaults(skew_share=1.0, max_skew_s=90))
    run = run_of(faults)
    plan_ids = {d.id for d in run.plan.devices}
    for sent in run.messages():
        m = sent.message
        if m.channel != "telemetry" or sent.label != "good":
            continue
        assert m.device_id in plan_ids and m.skewed
        rec = records_of(m.payload)[0]
        ts = TelemetrySet.model_validate(rec).ts
        assert abs((ts - m.first_ts).total_seconds()) <= 90  # type: ignore[operator]
        assert abs((ts - m.first_ts).total_seconds()) >= 20  # type: ignore[operator]


def test_store_and_forward_uplink_sends_arrays() -> None:
    _, stats = digest(run_of(FaultConfig.none(), uplink_s=86400))
    assert stats.batched_messages > 0
    assert stats.good_messages < stats.unique_records / 4


def test_offline_devices_flush_after_they_come_back() -> None:
    faults = FaultConfig(device=DeviceFaults(offline_rate=0.2, offline_hours=(12, 48)))
    run = run_of(faults)
    flushes = [s.message for s in run.messages() if s.message.offline_period]
    assert flushes
    for m in flushes:
        # the flush is sent at or after the newest record it carries
        assert m.last_ts is not None and m.send_at >= m.last_ts
        assert m.send_at - m.first_ts >= timedelta(hours=4)  # type: ignore[operator]
