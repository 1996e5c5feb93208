"""`coffeetrace simulate`: seed a cooperative and run its fleet against the configured broker.

Optionally runs ingest in the same process (`--ingest`) and reconciles what was sent
with what the store holds (`--reconcile`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coffeetrace import db
from coffeetrace.broker_control import BrokerControl
from coffeetrace.errors import ValidationFailed
from coffeetrace.settings import Settings
from coffeetrace.simulators.faults import FaultConfig
from coffeetrace.simulators.fleet import FleetRun, Pacing, run_fleet
from coffeetrace.simulators.physics import LOCAL
from coffeetrace.simulators.plan import WorldSpec, make_plan
from coffeetrace.simulators.seeding import SeededWorld, count_store, seed_world
from coffeetrace.simulators.stats import SimStats
from coffeetrace.simulators.streams import DeviceFaults, Timing
from coffeetrace.trace.keys import KeyRing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimOptions:
    spec: WorldSpec
    start: date | None = None  # default: 1 May of the season year
    end: date | None = None  # default: 1 February after the season
    soil_interval_s: int = 1800
    weather_interval_s: int = 600
    faults: FaultConfig = field(default_factory=FaultConfig.none)
    pacing: Pacing = field(default_factory=Pacing)
    max_devices: int | None = None
    telemetry: bool = True
    harvest: bool = True
    publish: bool = True
    bulk: bool | None = None


@dataclass
class SimResult:
    world: SeededWorld
    stats: SimStats | None
    seed_s: float
    publish_s: float = 0.0
    store: dict[str, Any] | None = None
    reconciled: bool | None = None


def window(opts: SimOptions) -> tuple[datetime, datetime]:
    year = opts.spec.season_year
    start = opts.start or date(year, 5, 1)
    end = opts.end or date(year + 1, 2, 1)
    t0 = datetime(start.year, start.month, start.day, tzinfo=LOCAL)
    t1 = datetime(end.year, end.month, end.day, tzinfo=LOCAL)
    # never stamp a reading in the future
    return t0, min(t1, datetime.now(tz=LOCAL))


def fault_preset(name: str, scale: float = 1.0) -> FaultConfig:
    if name == "none":
        return FaultConfig.none()
    if name == "all":
        return FaultConfig.all_on(scale)
    if name == "some":
        return FaultConfig(
            device=DeviceFaults(offline_rate=0.03, repeat_rate=0.3, skew_share=0.2, max_skew_s=90),
            duplicate_rate=0.01,
            reorder_rate=0.01,
            malformed_rate=0.002,
        )
    raise ValidationFailed(f"unknown fault preset {name!r}: use none, some or all", field="faults")


def expected_store(stats: SimStats) -> dict[str, Any]:
    """What ingest must hold once it has taken every message of `stats`."""
    return {
        "telemetry_records": stats.unique_telemetry_records,
        "harvest_records": stats.unique_harvest_records,
        "readings": stats.readings,
        "harvest_events": stats.unique_harvest_records,
        "harvest_kg": Decimal(str(round(stats.harvest_kg, 3))),
        "dead_letters": stats.malformed_messages,
    }


def wait_for_store(
    settings: Settings,
    device_ids: list[str],
    stats: SimStats,
    *,
    timeout_s: float = 120.0,
    settle_s: float = 2.0,
) -> tuple[dict[str, Any], bool]:
    """Poll the store until it matches `stats` (True) or stops changing (False)."""
    want = expected_store(stats)
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    changed = time.monotonic()
    with db.connect(settings.effective_database_url(), autocommit=True) as conn:
        while True:
            got = count_store(conn, device_ids)
            if got == want:
                return got, True
            if got != last:
                last, changed = got, time.monotonic()
            now = time.monotonic()
            # stop when past the deadline, or when every count is at least what is wanted and
            # nothing moved for a while (more than wanted would never shrink)
            if now > deadline or (
                now - changed > settle_s * 5 and all(got[k] >= want[k] for k in want)
            ):
                return got, False
            time.sleep(0.25)


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "simulator-credentials.json"


def load_credentials(settings: Settings) -> dict[str, str]:
    """Device passwords saved by an earlier run (only hashes are in the database)."""
    path = credentials_path(settings)
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def save_credentials(settings: Settings, credentials: dict[str, str]) -> None:
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {**load_credentials(settings), **credentials}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(saved, out)


def issue_on_broker(
    settings: Settings, credentials: dict[str, str], known: dict[str, str]
) -> dict[str, str]:
    """Give the broker the passwords a seeding issued (those not in `known`: new devices,
    rotated ones) when it takes changes at once (COFFEETRACE_MQTT_BROKER_AUTH=dynsec, as
    the stack's embedded Mosquitto and docker compose run it), as the API does for a
    device it registers. Other brokers learn them from `coffeetrace broker-config`.
    Returns the passwords issued."""
    issued = {d: p for d, p in credentials.items() if known.get(d) != p}
    BrokerControl(settings).upsert_devices(issued)
    return issued


def simulate(
    settings: Settings,
    opts: SimOptions,
    *,
    say: Callable[[str], None],
    progress: bool = True,
    consumer: AbstractContextManager[object] | None = None,
    reconcile: bool = False,
    stop: threading.Event | None = None,
) -> SimResult:
    """Seed, then publish the fleet's season. `consumer`: something to run while publishing
    (the CLI's `--ingest` passes a running ingest), entered before the first message."""
    plan = make_plan(opts.spec)
    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*cols, disable=not progress, transient=True) as bar:
        task = bar.add_task("seeding trees", total=plan.tree_count)
        with (
            db.connect(
                settings.effective_database_url(), timeout_s=settings.db_connect_timeout_s
            ) as conn,
            conn.transaction(),
        ):
            known = load_credentials(settings)
            world = seed_world(
                conn,
                plan,
                keys=KeyRing(settings.effective_keys_dir()),
                bulk=opts.bulk,
                progress=lambda n: bar.advance(task, n),
                known_passwords=known,
            )
            # in the transaction: a broker that refuses them leaves the registry unchanged
            issue_on_broker(settings, world.credentials, known)
        save_credentials(settings, world.credentials)
    seed_s = time.perf_counter() - t0
    say(
        f"cooperative {opts.spec.coop_code}: {len(plan.farms)} farms, {len(plan.plots)} plots, "
        f"{world.trees:,} trees, {len(plan.devices)} devices "
        + (
            f"seeded in {seed_s:.1f} s ({world.trees / max(seed_s, 1e-9):,.0f} trees/s)"
            if world.created
            else "(found from an earlier run)"
        )
    )
    result = SimResult(world, None, seed_s)
    if not opts.publish:
        return result
    start, end = window(opts)
    timing = Timing(
        start=start,
        end=end,
        soil_interval_s=opts.soil_interval_s,
        weather_interval_s=opts.weather_interval_s,
        telemetry=opts.telemetry,
        harvest=opts.harvest,
    )
    ids = None
    if opts.max_devices is not None:
        ids = tuple(d.id for d in plan.devices[: opts.max_devices])
    run = FleetRun(plan, timing, opts.faults, opts.pacing, ids)
    with consumer if consumer is not None else nullcontext():
        t1 = time.perf_counter()
        with Progress(
            *cols[:2],
            TextColumn("{task.fields[sent]}"),
            TimeElapsedColumn(),
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task("publishing", total=1000, sent="")

            def on_progress(done: float, stats: SimStats) -> None:
                bar.update(
                    task,
                    completed=int(done * 1000),
                    sent=f"{stats.published:,} msgs, {stats.unique_records:,} records",
                )

            stats = run_fleet(
                settings.effective_mqtt_url(),
                settings.topic_prefix,
                run,
                world.credentials,
                stop=stop,
                on_progress=on_progress,
            )
        result.publish_s = time.perf_counter() - t1
        result.stats = stats
        say(
            f"published {stats.published:,} messages in {result.publish_s:.1f} s "
            f"({stats.published / max(result.publish_s, 1e-9):,.0f} msg/s)"
        )
        if reconcile:
            store, ok = wait_for_store(settings, [d for d in run.devices()], stats)
            result.store, result.reconciled = store, ok
    return result
