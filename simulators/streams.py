"""Each device's messages over simulated time, with the field behaviour of real devices.

A device stream yields `Outgoing` messages in the order the device would publish them:
readings at its reporting interval, a status now and then, and, after an offline period
(or with a store-and-forward uplink), its buffered records as JSON arrays. Clock skew
is applied here, since it belongs to the device. Faults that happen between devices and
the broker (duplicates, reordering, malformed payloads) are added in `faults.py`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from coffeetrace.simulators.physics import (
    LOCAL,
    SoilBucket,
    Weather,
    harvest_rounds,
    season_yield_kg,
)
from coffeetrace.simulators.plan import DevicePlan, WorldPlan


@dataclass(frozen=True)
class Timing:
    """Simulated window and reporting intervals."""

    start: datetime
    end: datetime | None  # None: keep going (live mode)
    soil_interval_s: int = 1800
    weather_interval_s: int = 600
    status_every_s: int = 7 * 86400
    uplink_s: int = 0  # >0: devices buffer and publish arrays every uplink_s (store-and-forward)
    seq_start: int = 1
    harvest: bool = True
    telemetry: bool = True


@dataclass(frozen=True)
class DeviceFaults:
    """Field behaviour that belongs to the device itself."""

    offline_rate: float = 0.0  # chance per simulated day that the device drops offline
    offline_hours: tuple[float, float] = (3.0, 60.0)
    repeat_rate: float = 0.0  # chance that a flush repeats records already sent
    skew_share: float = 0.0  # share of devices whose clock is off
    max_skew_s: int = 120
    flush_batch: int = 48  # records per array message


@dataclass(frozen=True)
class Outgoing:
    send_at: datetime  # simulated time the device publishes
    device_id: str
    channel: str  # telemetry, harvest or status
    payload: bytes
    records: tuple[int, ...] = ()  # seqs of records sent for the first time
    repeats: int = 0  # records in the payload that were already sent
    readings: int = 0  # metric values in the new telemetry records
    harvest_kg: float = 0.0  # cherry kg in the new harvest records
    flushed: int = 0  # new records that had waited in the buffer
    skewed: bool = False
    offline_period: bool = False  # first message after an offline period
    first_ts: datetime | None = None
    last_ts: datetime | None = None


@dataclass
class _Record:
    seq: int
    t: datetime  # true time
    body: dict[str, Any]
    readings: int = 0
    kg: float = 0.0


def format_ts(t: datetime, fmt: str) -> str | int:
    if fmt == "epoch_ms":
        return int(t.timestamp() * 1000)
    return t.astimezone(LOCAL).isoformat(timespec="seconds")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class _Device:
    plan: DevicePlan
    timing: Timing
    faults: DeviceFaults
    rng: random.Random
    skew: timedelta
    seq: int = 0
    buffer: list[_Record] = field(default_factory=list)
    sent_tail: list[_Record] = field(default_factory=list)
    offline_until: datetime | None = None
    next_offline_check: datetime | None = None
    came_back: bool = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.timing.seq_start + self.seq - 1

    def stamp(self, rec: _Record) -> dict[str, Any]:
        body = {"seq": rec.seq, "ts": format_ts(rec.t + self.skew, self.plan.ts_format)}
        body.update(rec.body)
        return body

    def is_offline(self, t: datetime) -> bool:
        """Advance the offline state machine to `t` (one draw per simulated day)."""
        if self.faults.offline_rate <= 0:
            return False
        if self.next_offline_check is None:
            self.next_offline_check = t + timedelta(hours=self.rng.uniform(0, 24))
        while self.next_offline_check <= t:
            at = self.next_offline_check
            self.next_offline_check = at + timedelta(days=1)
            if (self.offline_until is None or self.offline_until <= at) and (
                self.rng.random() < self.faults.offline_rate
            ):
                hours = self.rng.uniform(*self.faults.offline_hours)
                self.offline_until = at + timedelta(hours=hours)
        return self.offline_until is not None and self.offline_until > t

    def emit(self, rec: _Record, channel: str) -> Iterator[Outgoing]:
        """Send the record now, or buffer it while offline or until the next uplink."""
        if self.is_offline(rec.t):
            self.came_back = True
            self.buffer.append(rec)
            return
        if self.buffer or self.timing.uplink_s:
            self.buffer.append(rec)
            uplink_due = rec.t - self.buffer[0].t >= timedelta(seconds=self.timing.uplink_s)
            if self.came_back or uplink_due:
                yield from self.flush(rec.t, channel)
            return
        yield self._message(rec.t, channel, [rec], flushed=0)

    def flush(self, now: datetime, channel: str) -> Iterator[Outgoing]:
        if not self.buffer:
            return
        pending, self.buffer = self.buffer, []
        repeat: list[_Record] = []
        back = self.came_back
        if back and self.sent_tail and self.rng.random() < self.faults.repeat_rate:
            # the device never saw the broker's acknowledgement of its last records
            repeat = self.sent_tail[-self.rng.randint(1, len(self.sent_tail)) :]
        batch = max(1, self.faults.flush_batch)
        for i in range(0, len(pending), batch):
            chunk = pending[i : i + batch]
            msg = self._message(
                now,
                channel,
                chunk,
                flushed=len(chunk) if back else 0,
                repeat=repeat if i == 0 else [],
                offline_period=back and i == 0,
            )
            yield msg
        self.came_back = False

    def _message(
        self,
        now: datetime,
        channel: str,
        recs: list[_Record],
        *,
        flushed: int,
        repeat: list[_Record] | None = None,
        offline_period: bool = False,
    ) -> Outgoing:
        repeat = repeat or []
        bodies = [self.stamp(r) for r in repeat + recs]
        payload = dumps(bodies[0] if len(bodies) == 1 else bodies)
        self.sent_tail = (self.sent_tail + recs)[-3:]
        return Outgoing(
            send_at=now,
            device_id=self.plan.id,
            channel=channel,
            payload=payload,
            records=tuple(r.seq for r in recs),
            repeats=len(repeat),
            readings=sum(r.readings for r in recs),
            harvest_kg=sum(r.kg for r in recs),
            flushed=flushed,
            skewed=bool(self.skew),
            offline_period=offline_period,
            first_ts=recs[0].t,
            last_ts=recs[-1].t,
        )

    def status(self, t: datetime, battery: float) -> Outgoing:
        body = {"online": True, "battery_pct": round(battery, 1), "firmware": self.plan.firmware}
        return Outgoing(send_at=t, device_id=self.plan.id, channel="status", payload=dumps(body))


def _new_device(
    plan: DevicePlan, world: WorldPlan, timing: Timing, faults: DeviceFaults
) -> _Device:
    rng = random.Random(f"{world.spec.seed}:device:{plan.kind}:{plan.plot_code}:{timing.seq_start}")
    skew = timedelta(0)
    if rng.random() < faults.skew_share:
        skew = timedelta(seconds=rng.choice((-1, 1)) * rng.uniform(20, faults.max_skew_s))
    return _Device(plan, timing, faults, rng, skew)


def _ticks(
    rng: random.Random, start: datetime, end: datetime | None, interval_s: int
) -> Iterator[datetime]:
    """Reporting times: the interval with a little jitter (devices sleep imprecisely)."""
    t = start + timedelta(seconds=rng.uniform(0, interval_s))
    while end is None or t < end:
        yield t
        t += timedelta(seconds=interval_s * rng.uniform(0.97, 1.03))


def sensor_stream(
    plan: DevicePlan, world: WorldPlan, timing: Timing, faults: DeviceFaults
) -> Iterator[Outgoing]:
    dev = _new_device(plan, world, timing, faults)
    weather = Weather(world.spec.seed, plan.district, plan.altitude_m)
    soil = SoilBucket(weather, timing.start, dev.rng)
    interval = timing.soil_interval_s if plan.kind == "soil_node" else timing.weather_interval_s
    battery = dev.rng.uniform(70, 100)
    next_status = timing.start
    last = timing.start
    noise = dev.rng.gauss
    for t in _ticks(dev.rng, timing.start, timing.end, interval):
        if t >= next_status and not dev.is_offline(t):
            battery = max(5.0, battery - dev.rng.uniform(0.5, 2.0))
            if battery < 15:
                battery = dev.rng.uniform(90, 100)  # battery swapped on a farm visit
            yield dev.status(t, battery)
            next_status = t + timedelta(seconds=timing.status_every_s)
        if plan.kind == "soil_node":
            vwc = soil.advance(t)
            values = {
                "soilMoistureVwc": round(vwc + noise(0, 0.3), 2),
                "soilTemperature": round(soil.soil_temperature(t) + noise(0, 0.15), 2),
            }
        else:
            values = {
                "temperature": round(weather.temperature(t) + noise(0, 0.2), 2),
                "relativeHumidity": round(
                    min(100.0, weather.relative_humidity(t) + noise(0, 1.0)), 1
                ),
                "precipitation": round(weather.rain_between(last, t), 1),
                "solarRadiation": round(weather.solar_radiation(t), 1),
                "windSpeed": round(weather.wind_speed(t) + abs(noise(0, 0.3)), 2),
                "atmosphericPressure": round(weather.pressure(t) + noise(0, 0.3), 1),
                "leafWetness": round(weather.leaf_wetness(t), 1),
            }
        last = t
        rec = _Record(dev.next_seq(), t, {"values": values}, readings=len(values))
        yield from dev.emit(rec, "telemetry")
    if timing.end is not None:
        yield from dev.flush(max(timing.end, dev.offline_until or timing.end), "telemetry")


def harvest_stream(
    plan: DevicePlan, world: WorldPlan, timing: Timing, faults: DeviceFaults
) -> Iterator[Outgoing]:
    """A farm's scale or phone: one weighing per sampled tree per picking round."""
    dev = _new_device(plan, world, timing, faults)
    farm = world.farm(plan.farm_code)
    season = world.spec.season_year
    rounds = harvest_rounds(world.spec.seed, farm.code, season)
    trees = []
    for plot in farm.plots:
        sample = set(plot.harvest_sample())
        for n, tree in enumerate(plot.trees(), start=1):
            if n in sample and tree.status == "active":
                rng = random.Random(f"{world.spec.seed}:yield:{tree.tag_code}")
                kg = season_yield_kg(rng, tree.cultivar, tree.planted_on, season, plot.management)
                if kg > 0:
                    trees.append((tree, kg, rng))
    yield dev.status(timing.start, dev.rng.uniform(60, 100))
    for rnd in rounds:
        per_day = max(1, -(-len(trees) // rnd.days))
        for i, (tree, kg, rng) in enumerate(trees):
            day = rnd.start + timedelta(days=i // per_day)
            # pickers weigh from 07:00 to about 16:30
            minute = 7 * 60 + (i % per_day) * (570 / per_day) + rng.uniform(0, 570 / per_day)
            t = datetime(day.year, day.month, day.day, tzinfo=LOCAL) + timedelta(minutes=minute)
            if t < timing.start or (timing.end is not None and t >= timing.end):
                continue
            picked = round(max(0.05, kg * rnd.share * rng.uniform(0.85, 1.15)), 3)
            ripeness = round(min(100.0, max(40.0, rng.gauss(rnd.ripeness, 4.0))), 1)
            body = {
                "tree": tree.tag_code,
                "cherry_kg": picked,
                "ripeness_pct": ripeness,
                "picker": farm.pickers[i % len(farm.pickers)],
            }
            rec = _Record(dev.next_seq(), t, body, kg=picked)
            yield from dev.emit(rec, "harvest")
    end = timing.end or datetime.now(tz=LOCAL)
    yield from dev.flush(max(end, dev.offline_until or end), "harvest")


def device_stream(
    plan: DevicePlan, world: WorldPlan, timing: Timing, faults: DeviceFaults
) -> Iterator[Outgoing]:
    if plan.kind in ("harvest_scale", "phone"):
        return harvest_stream(plan, world, timing, faults) if timing.harvest else iter(())
    return sensor_stream(plan, world, timing, faults) if timing.telemetry else iter(())
