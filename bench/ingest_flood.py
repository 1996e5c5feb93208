"""`coffeetrace bench ingest-flood`: one device floods, the others must not notice.

50 well-behaved devices (soil nodes, each its own MQTT connection) publish one small
reading set at a steady 2 messages/s each, while one device of the same cooperative
publishes at 100 times its message limit. Rounds of two phases of equal length against
the same running ingest: a baseline (the good devices alone), then the flood. Reported:
the good devices' publish-to-commit p50/p99 in each kind of phase (pooled over the
rounds, and each round's p99), how many of their messages were stored (each exactly
once), what the flood cost: dead-letter rows (bounded by the per-device-hour cap),
rate-limited messages counted, messages let through, and the CPU ingest used.

Publish-to-commit is measured as in `bench ingest`: the commit hook's lag of each message
(commit time minus the newest `ts` in the payload, which the publisher stamps when it
publishes). The flooding device stamps its readings FLOOD_BEHIND_S in the past, so that
the lags of the few flood messages its limit lets through are told apart from the good
devices' by their size alone; a lag is in the phase in which its message was published
(commit time minus lag). The first `warmup` seconds (registry cache filling) are in
no phase.

The publishers run in processes of their own (the good devices in one, each round's flood
in another), on a common wall-clock schedule; the servers are those of `bench ingest`: a
Mosquitto of its own with the shipped config and a scratch database, dropped after.
"""

from __future__ import annotations

import json
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from typing import Any, LiteralString

import psutil
import psycopg

from coffeetrace.errors import ConfigError
from coffeetrace.ingest.service import Committed, IngestService
from coffeetrace.ingest.topics import device_topic
from coffeetrace.mqtt import new_client, parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries
from coffeetrace_bench.ingest import (
    _payload,
    _sleep_until,
    _world,
    bench_servers,
    bench_settings,
    finish_process,
    start_process,
    start_publisher,
    with_settings,
)

SQL = load_queries("coffeetrace_bench", "ingest_flood.sql")

# The flood's readings are stamped this far in the past (the bench's devices are registered
# an hour before the run): its lags are at least this, the good devices' far below half.
FLOOD_BEHIND_S = 600.0
# Publishers are spawned and connected before this many seconds have passed.
START_MARGIN_S = 3.0
# Longest wait, after the publishers are done, for everything to be committed.
DRAIN_TIMEOUT_S = 120.0


def _devices_proc(
    url: str,
    prefix: str,
    devices: Sequence[str],
    rate: float,
    seconds: float,
    start_at: float,
    out: Any,
) -> None:
    """Each of `devices` on its own connection publishes `rate` QoS 1 messages a second for
    `seconds` from wall-clock `start_at`, their turns spread evenly (a steady total of
    len(devices) * rate a second); message k of a device has seq k and `ts` = publish time.
    Puts (acknowledged, seconds, wall-clock time of the first publish) on `out`."""
    addr = parse_broker_url(url)
    acked = [0]
    lock = threading.Lock()

    def on_publish(*_args: Any) -> None:
        with lock:
            acked[0] += 1

    topics = [device_topic(prefix, d, "telemetry") for d in devices]
    clients = []
    for device in devices:
        client = new_client(addr, device)  # a device connects as itself
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.connect(addr.host, addr.port)
        client.loop_start()
        clients.append(client)
    each = max(1, int(rate * seconds))
    total, every = each * len(devices), 1 / (rate * len(devices))
    _sleep_until(start_at)
    started, started_wall = time.monotonic(), time.time()
    for e in range(total):
        pause = started + e * every - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        j = e % len(devices)
        clients[j].publish(topics[j], _payload(e // len(devices), 1), qos=1)
    deadline = time.monotonic() + 300
    while acked[0] < total and time.monotonic() < deadline:
        time.sleep(0.02)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    out.put((acked[0], time.monotonic() - started, started_wall))


class _Timeline:
    """Every committed batch's commit time and lags, the messages committed, and the dead
    letters counted by reason code (with a row, or beyond the cap without one)."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, Sequence[float]]] = []
        self.messages = 0
        self.dead_letters: Counter[str] = Counter()
        self.last_commit = 0.0

    def __call__(self, c: Committed) -> None:
        self.messages += c.messages
        self.batches.append((c.committed_at, c.lags))
        self.dead_letters.update(c.dead_letters)
        self.dead_letters.update(c.dropped)
        self.last_commit = c.committed_at

    def good_lags(self, start: float, end: float) -> list[float]:
        """Lags of the good devices' messages published in [start, end) (wall clock)."""
        return sorted(
            lag
            for at, lags in self.batches
            for lag in lags
            if lag < FLOOD_BEHIND_S / 2 and start <= at - lag < end
        )


def _quantiles(lags: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (nan with fewer than 2 samples)."""
    if len(lags) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(lags, n=100)
    return round(q[49] * 1000, 1), round(q[98] * 1000, 1)


def _wait_committed(service: IngestService, hook: _Timeline, total: int) -> None:
    """Until every message delivered has been committed: all `total` counted by the hook, or
    nothing pending and no commit for 2 s (should ingest ever drop a message unseen)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while hook.messages < total:
        if service.pending() == 0 and time.time() - hook.last_commit > 2:
            return
        if time.monotonic() > deadline:
            raise ConfigError(f"ingest committed {hook.messages} of {total} messages")
        time.sleep(0.1)


def _stored(db_url: str, good: list[str], flooder: str) -> dict[str, Any]:
    """What the database holds of each side after the run."""
    with psycopg.connect(db_url) as conn:

        def one(query: LiteralString, devices: list[str]) -> Any:
            row = conn.execute(query, {"devices": devices}).fetchone()
            return row[0] if row else None

        per_device: dict[str, int] = dict(
            conn.execute(SQL["bench_flood_messages_per_device"], {"devices": good}).fetchall()
        )
        figures = {
            "good_per_device": per_device,
            "good_readings_stored": one(SQL["bench_flood_readings_stored"], good),
            "good_readings_distinct": one(SQL["bench_flood_readings_distinct"], good),
            "good_dead_letter_rows": one(SQL["bench_flood_dead_letter_rows"], good),
            "flood_messages_stored": one(SQL["bench_flood_messages_stored"], [flooder]),
            "flood_dead_letter_rows": one(SQL["bench_flood_dead_letter_rows"], [flooder]),
            "flood_dead_letter_rows_rate_limited": one(
                SQL["bench_flood_dead_letter_rows_rate_limited"], [flooder]
            ),
        }
        if conn.execute(SQL["bench_flood_has_dead_letter_hours"]).fetchone() == (True,):
            received, kept = conn.execute(
                SQL["bench_flood_dead_letter_hours"], {"devices": [flooder]}
            ).fetchone() or (0, 0)
            figures["flood_dead_letter_hours_received"] = int(received)
            figures["flood_dead_letter_hours_kept"] = int(kept)
    return figures


def _hours(start: float, end: float) -> int:
    """How many clock hours [start, end] touches (the dead-letter cap is per device hour)."""
    return int(end // 3600) - int(start // 3600) + 1


class _CpuSampler:
    """CPU seconds used so far by this process (paho, batching, acks) and the ingest worker,
    every 0.2 s, to tell what each phase cost ingest."""

    def __init__(self, worker_pid: int | None) -> None:
        self.samples: list[tuple[float, float]] = []  # (wall clock, CPU seconds)
        self._procs = [psutil.Process()]
        if worker_pid is not None:
            self._procs.append(psutil.Process(worker_pid))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with suppress(psutil.Error):
                self.samples.append(
                    (
                        time.time(),
                        sum(t.user + t.system for t in (p.cpu_times() for p in self._procs)),
                    )
                )
            if self._stop.wait(0.2):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def share(self, windows: list[tuple[float, float]]) -> float:
        """CPU seconds per second (1.0 = one core) over `windows`, from the samples nearest."""
        used = seconds = 0.0
        for start, end in windows:
            inside = [x for x in self.samples if start <= x[0] <= end]
            if len(inside) >= 2:
                used += inside[-1][1] - inside[0][1]
                seconds += inside[-1][0] - inside[0][0]
        return round(used / seconds, 3) if seconds else float("nan")


def run_flood_bench(
    settings: Settings,
    *,
    phase_seconds: float,
    database_url: str,
    say: Callable[[str], None],
    rounds: int = 3,
    good_devices: int = 50,
    good_rate: float = 2.0,
    limit: float = 10.0,
    burst: int = 20,
    factor: float = 100.0,
    warmup_seconds: float = 2.0,
) -> dict[str, Any]:
    """`rounds` rounds of a baseline phase then a flood phase, `phase_seconds` each; the
    latency figures pool each kind of phase over the rounds (other work on the machine
    stalls everything for 100-200 ms now and then: at 100 messages/s one such stall is a
    p99 of 2,000 samples; alternating spreads it over both kinds), each round's are in
    the *_rounds lists."""
    if shutil.which("mosquitto") is None:
        raise ConfigError("`coffeetrace bench ingest-flood` needs mosquitto on PATH")
    if (
        limit <= 0
        or burst < 1
        or good_rate <= 0
        or good_devices < 1
        or phase_seconds <= 0
        or rounds < 1
    ):
        raise ConfigError(
            "bench ingest-flood needs a limit > 0, a burst >= 1, good devices "
            "and a good rate > 0, phases longer than 0 s and rounds >= 1"
        )
    with ExitStack() as stack:
        broker, db_url = bench_servers(settings, database_url, stack, "ct_bench_flood")
        ids, _coop, _plot = _world(db_url, good_devices + 1)
        flooder, good = ids[0], ids[1:]
        s = with_settings(
            bench_settings(settings, db_url, broker, say),
            ingest_device_msgs_per_s=limit,
            ingest_device_msgs_burst=burst,
        )
        cap_per_hour = int(getattr(s, "ingest_dead_letters_per_device_hour", 100))
        flood_rate = factor * limit
        per_round = int(flood_rate * phase_seconds)
        flood_count = per_round * rounds
        good_seconds = warmup_seconds + 2 * phase_seconds * rounds
        say(
            f"limits: {getattr(s, 'ingest_device_msgs_per_s', None)} msgs/s, burst "
            f"{getattr(s, 'ingest_device_msgs_burst', None)}; reading sets "
            f"{getattr(s, 'ingest_device_sets_per_s', None)}/s, burst "
            f"{getattr(s, 'ingest_device_sets_burst', None)}; dead-letter rows "
            f"{cap_per_hour} per device hour"
        )
        say(
            f"{good_devices} good devices at {good_rate:g} msgs/s each for {good_seconds:g} s "
            f"({warmup_seconds:g} s warm-up, then {rounds} x {phase_seconds:g} s baseline + "
            f"{phase_seconds:g} s with one device at {flood_rate:,.0f} msgs/s, {factor:g}x "
            f"its limit)"
        )

        hook = _Timeline()
        service = IngestService(s, on_commit=hook)
        service.start()
        cpu = _CpuSampler(service.worker_pid)
        good_each = max(1, int(good_rate * good_seconds))
        good_total = good_each * good_devices
        flood_topic = device_topic(s.topic_prefix, flooder, "telemetry")
        try:
            start_at = time.time() + START_MARGIN_S
            flood_at = [
                start_at + warmup_seconds + (2 * r + 1) * phase_seconds for r in range(rounds)
            ]
            good_pub = start_process(
                _devices_proc, broker.url, s.topic_prefix, good, good_rate, good_seconds, start_at
            )
            # each round's flood a process of its own, waiting for its turn; seq numbers
            # go on from round to round (what gets through is stored once each)
            flood_pubs = [
                start_publisher(
                    broker.url,
                    flood_topic,
                    r * per_round,
                    per_round,
                    1,
                    flood_rate,
                    start_at=at,
                    behind_s=FLOOD_BEHIND_S,
                )
                for r, at in enumerate(flood_at)
            ]
            flood_runs = [finish_process(pub, per_round) for pub in flood_pubs]
            _, _, good_start = finish_process(good_pub, good_total)
            _wait_committed(service, hook, good_total + flood_count)
        finally:
            service.stop()
            cpu.stop()
        done_at = time.time()

        # the phases, from when the publishers really started (each waited for its start)
        flood_start = [run[2] for run in flood_runs]
        base_windows = [
            (max(good_start + warmup_seconds, f - phase_seconds), f) for f in flood_start
        ]
        flood_windows = [
            (f, min(f + phase_seconds, good_start + good_seconds)) for f in flood_start
        ]
        base = sorted(x for w in base_windows for x in hook.good_lags(*w))
        under = sorted(x for w in flood_windows for x in hook.good_lags(*w))
        base50, base99 = _quantiles(base)
        fl50, fl99 = _quantiles(under)
        base_rounds = [_quantiles(hook.good_lags(*w))[1] for w in base_windows]
        flood_rounds = [_quantiles(hook.good_lags(*w))[1] for w in flood_windows]
        stored = _stored(db_url, good, flooder)
        per_device = stored.pop("good_per_device")
        cap = cap_per_hour * _hours(flood_start[0], done_at)
        ratio = round(fl99 / base99, 2) if base99 > 0 else float("nan")
        figures: dict[str, Any] = {
            "bench": "ingest-flood",
            "phase_seconds": phase_seconds,
            "rounds": rounds,
            "warmup_seconds": warmup_seconds,
            "good_devices": good_devices,
            "good_rate_msgs_s": good_rate,
            "limit_msgs_s": limit,
            "limit_burst": burst,
            "flood_factor": factor,
            "flood_rate_msgs_s": flood_rate,
            "flood_sent_msgs_s": round(per_round * rounds / sum(r[1] for r in flood_runs)),
            "flood_late_start_ms": round(
                max(f - at for f, at in zip(flood_start, flood_at, strict=True)) * 1000, 1
            ),
            "flood_baseline_p50_ms": base50,
            "flood_baseline_p99_ms": base99,
            "flood_baseline_samples": len(base),
            "flood_p50_ms": fl50,
            "flood_p99_ms": fl99,
            "flood_samples": len(under),
            "flood_p99_ratio": ratio,
            "flood_baseline_p99_ms_rounds": base_rounds,
            "flood_p99_ms_rounds": flood_rounds,
            "flood_p99_ratio_rounds": [
                round(f / b, 2) if b > 0 else float("nan")
                for b, f in zip(base_rounds, flood_rounds, strict=True)
            ],
            "ingest_cpu_baseline": cpu.share(base_windows),
            "ingest_cpu_flood": cpu.share(flood_windows),
            "flood_messages_sent": flood_count,
            "flood_dead_letter_cap": cap,
            "flood_rate_limited_counted": int(hook.dead_letters["rate_limited"]),
            "good_messages_published": good_total,
            "good_messages_committed": sum(per_device.values()),
            "good_devices_complete": sum(1 for d in good if per_device.get(d) == good_each),
            **stored,
        }
        figures["flood_target_met"] = bool(
            fl99 < 1000 and ratio < 3 and stored["flood_dead_letter_rows"] <= cap
        )
        say(
            f"baseline ({len(base)} messages of the good devices): publish-to-commit p50 "
            f"{base50:g} ms, p99 {base99:g} ms (rounds: "
            f"{', '.join(f'{x:g}' for x in base_rounds)}); ingest CPU "
            f"{figures['ingest_cpu_baseline']:g} cores"
        )
        say(
            f"under the flood ({len(under)} messages; the flood sent {flood_count:,} at "
            f"{figures['flood_sent_msgs_s']:,}/s): p50 {fl50:g} ms, p99 {fl99:g} ms "
            f"({ratio:g}x the baseline's; rounds: {', '.join(f'{x:g}' for x in flood_rounds)}); "
            f"ingest CPU {figures['ingest_cpu_flood']:g} cores"
        )
        say(
            f"good devices: {figures['good_messages_committed']:,} of {good_total:,} messages "
            f"stored, {stored['good_readings_stored']:,} readings "
            f"({stored['good_readings_distinct']:,} distinct), "
            f"{stored['good_dead_letter_rows']} dead letters"
        )
        say(
            f"flood: {stored['flood_messages_stored']:,} messages let through, "
            f"{figures['flood_rate_limited_counted']:,} rate-limited, "
            f"{stored['flood_dead_letter_rows']} dead-letter rows (cap {cap})"
        )
        say(
            "targets (p99 under flood < 1 s and < 3x the baseline's; dead-letter rows <= cap): "
            + ("met" if figures["flood_target_met"] else "NOT met")
        )
        print(json.dumps(figures), flush=True)
        return figures
    raise AssertionError("unreachable")
