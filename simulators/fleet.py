"""Run a fleet: merge the device streams, add faults, pace them and publish them.

Pacing is either time acceleration (simulated seconds per wall second; a season in
minutes), a fixed message rate (load mode), or as fast as the broker takes them.
Counters are updated as messages are actually published, so an interrupted run still
reports exactly what left the simulator.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from coffeetrace.simulators.faults import FaultConfig, Sent, apply_faults
from coffeetrace.simulators.plan import WorldPlan
from coffeetrace.simulators.publisher import Publisher
from coffeetrace.simulators.stats import SimStats
from coffeetrace.simulators.streams import Outgoing, Timing, device_stream

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 20_000  # unacknowledged publishes before the simulator waits for the broker


@dataclass(frozen=True)
class Pacing:
    accel: float = 0.0  # simulated seconds per wall second; 0: as fast as possible
    rate: float = 0.0  # messages per second; overrides accel
    duration_s: float | None = None  # wall-clock limit


@dataclass
class FleetRun:
    plan: WorldPlan
    timing: Timing
    faults: FaultConfig = field(default_factory=FaultConfig.none)
    pacing: Pacing = field(default_factory=Pacing)
    device_ids: tuple[str, ...] | None = None  # None: every device of the plan

    def devices(self) -> list[str]:
        ids = [d.id for d in self.plan.devices]
        return [i for i in ids if self.device_ids is None or i in self.device_ids]

    def messages(self) -> Iterator[Sent]:
        """Everything the fleet publishes, in publishing order (deterministic)."""
        wanted = set(self.devices())
        streams = [
            device_stream(d, self.plan, self.timing, self.faults.device)
            for d in self.plan.devices
            if d.id in wanted
        ]
        merged: Iterator[Outgoing] = heapq.merge(*streams, key=lambda o: o.send_at)
        return apply_faults(merged, self.faults, self.plan.spec.seed)


def count(stats: SimStats, sent: Sent) -> None:
    m = sent.message
    stats.published += 1
    if sent.label == "status":
        stats.status_messages += 1
        return
    if sent.label == "duplicate":
        stats.duplicate_messages += 1
        stats.duplicate_records += m.repeats
        return
    if sent.label == "malformed":
        stats.malformed_messages += 1
        stats.malformed_by_kind[sent.malformed_kind] += 1
        return
    n = len(m.records)
    stats.good_messages += 1
    stats.reordered_messages += sent.reordered
    stats.batched_messages += (n + m.repeats) > 1
    stats.offline_periods += m.offline_period
    stats.flushed_records += m.flushed
    stats.repeated_records += m.repeats
    stats.duplicate_records += m.repeats
    stats.unique_records += n
    if m.channel == "telemetry":
        stats.unique_telemetry_records += n
        stats.readings += m.readings
    else:
        stats.unique_harvest_records += n
        stats.harvest_kg += m.harvest_kg
    if m.skewed:
        stats.skewed_records += n
    if m.first_ts is not None:
        first, last = m.first_ts.isoformat(), (m.last_ts or m.first_ts).isoformat()
        stats.first_ts = first if stats.first_ts is None else min(stats.first_ts, first)
        stats.last_ts = last if stats.last_ts is None else max(stats.last_ts, last)


def publish_run(
    run: FleetRun,
    publisher: Publisher,
    *,
    stop: threading.Event | None = None,
    stats: SimStats | None = None,
    on_progress: Callable[[float, SimStats], None] | None = None,
) -> SimStats:
    """Publish a run through connected devices; returns (and updates) the counters."""
    stats = stats or SimStats()
    stop = stop or threading.Event()
    pacing = run.pacing
    sim0: datetime = run.timing.start
    span = ((run.timing.end - sim0).total_seconds() if run.timing.end else 0.0) or 1.0
    wall0 = time.monotonic()
    skewed = set()
    last_report = 0.0
    for n, sent in enumerate(run.messages()):
        if stop.is_set():
            break
        if pacing.duration_s is not None and time.monotonic() - wall0 >= pacing.duration_s:
            break
        target = None
        if pacing.rate > 0:
            target = wall0 + n / pacing.rate
        elif pacing.accel > 0:
            target = wall0 + (sent.message.send_at - sim0).total_seconds() / pacing.accel
        if target is not None:
            delay = target - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
        if n % 1000 == 0 and publisher.in_flight() > MAX_IN_FLIGHT:
            while publisher.in_flight() > MAX_IN_FLIGHT // 2 and not stop.wait(0.01):
                pass
        publisher.publish(sent.message.device_id, sent.message.channel, sent.message.payload)
        count(stats, sent)
        if sent.message.skewed:
            skewed.add(sent.message.device_id)
        if on_progress is not None and time.monotonic() - last_report > 0.2:
            last_report = time.monotonic()
            done = (pacing.duration_s and (last_report - wall0) / pacing.duration_s) or (
                (sent.message.send_at - sim0).total_seconds() / span
            )
            on_progress(min(1.0, max(0.0, done)), stats)
    stats.skewed_devices = max(stats.skewed_devices, len(skewed))
    stats.devices = max(stats.devices, len(run.devices()))
    if on_progress is not None:
        on_progress(1.0, stats)
    log.info(
        "fleet_run_published published=%d unique_records=%d malformed=%d",
        stats.published,
        stats.unique_records,
        stats.malformed_messages,
    )
    return stats


def run_fleet(
    broker_url: str,
    topic_prefix: str,
    run: FleetRun,
    credentials: dict[str, str],
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[float, SimStats], None] | None = None,
    ack_timeout_s: float = 120.0,
) -> SimStats:
    """Connect the run's devices, publish everything, wait for the broker's acks."""
    publisher = Publisher(broker_url, topic_prefix, credentials)
    publisher.connect(run.devices())
    try:
        stats = publish_run(run, publisher, stop=stop, on_progress=on_progress)
        publisher.wait_published(ack_timeout_s)
    finally:
        publisher.close()
    stats.status_messages += len(run.devices())  # the goodbye statuses sent by close()
    stats.published += len(run.devices())
    return stats
