"""Per-device rate limits of the consumer: token buckets on messages and on reading sets.

One bucket pair per device, timed by when the paho process received each message (not by
when the worker reaches it, so a batch that waited behind a slow commit is not judged
over its limit). A device over either limit has its message dead-lettered with
`rate_limited` before anything else is spent on it: its flood costs a dict lookup and a
few arithmetic operations per message, and never holds up another device's batch.

A backlog queued by the broker while ingest was away arrives all at once when ingest
connects again: every bucket is refilled when a new connection delivers its first
message (`generation` of Incoming), so each device's backlog is admitted up to its burst.

Limits are per ingest process: with N processes behind a shared subscription a device
gets at most N times its limit. A rate of 0 switches that limit off.
"""

from __future__ import annotations

from dataclasses import dataclass

from coffeetrace.settings import Settings

RATE_SETTINGS = ("ingest_device_msgs_per_s", "ingest_device_sets_per_s")

# Idle devices' buckets are dropped once this many devices are tracked (a full bucket
# carries no information: a device seen again starts full anyway).
MAX_TRACKED_DEVICES = 200_000


@dataclass(frozen=True)
class Limits:
    msgs_per_s: float
    msgs_burst: int
    sets_per_s: float
    sets_burst: int

    @property
    def active(self) -> bool:
        return self.msgs_per_s > 0 or self.sets_per_s > 0


class DeviceLimiter:
    """`admit_message` before decoding, `admit_sets` once the sets are counted."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # device id -> [message tokens, set tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}
        self._generation = -1

    def _bucket(self, device_id: str, now: float, generation: int) -> list[float]:
        lim = self.limits
        if generation != self._generation:  # a new connection: its backlog starts afresh
            self._generation = generation
            self._buckets.clear()
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_DEVICES:
                self._forget_full(now)
            bucket = [float(lim.msgs_burst), float(lim.sets_burst), now]
            self._buckets[device_id] = bucket
            return bucket
        elapsed = now - bucket[2]
        if elapsed > 0:
            bucket[0] = min(float(lim.msgs_burst), bucket[0] + elapsed * lim.msgs_per_s)
            bucket[1] = min(float(lim.sets_burst), bucket[1] + elapsed * lim.sets_per_s)
            bucket[2] = now
        return bucket

    def _forget_full(self, now: float) -> None:
        lim = self.limits
        full_after = max(
            lim.msgs_burst / lim.msgs_per_s if lim.msgs_per_s else 0.0,
            lim.sets_burst / lim.sets_per_s if lim.sets_per_s else 0.0,
        )
        for device_id, bucket in list(self._buckets.items()):
            if now - bucket[2] >= full_after:
                del self._buckets[device_id]
        if len(self._buckets) >= MAX_TRACKED_DEVICES:  # all busy: forget the oldest half
            by_age = sorted(self._buckets, key=lambda d: self._buckets[d][2])
            for device_id in by_age[: len(by_age) // 2]:
                del self._buckets[device_id]

    def admit_message(self, device_id: str, now: float, generation: int) -> str | None:
        """None when the message may go on; else the reason it may not."""
        lim = self.limits
        if lim.msgs_per_s <= 0:
            return None
        bucket = self._bucket(device_id, now, generation)
        if bucket[0] < 1:
            return (
                f"rate_limited: device over {lim.msgs_per_s:g} messages/s (burst {lim.msgs_burst})"
            )
        bucket[0] -= 1
        return None

    def admit_sets(self, device_id: str, sets: int, now: float, generation: int) -> str | None:
        lim = self.limits
        if lim.sets_per_s <= 0:
            return None
        bucket = self._bucket(device_id, now, generation)
        if bucket[1] < sets:
            return (
                f"rate_limited: device over {lim.sets_per_s:g} reading sets/s "
                f"(burst {lim.sets_burst}; this message holds {sets})"
            )
        bucket[1] -= sets
        return None


def for_replay(settings: Settings) -> Settings:
    """`settings` for an ingest that consumes a time-accelerated replay (the demo's season
    in 20 s, `coffeetrace simulate --ingest`): no per-device rate limits, unless they
    were set explicitly. Real devices never get this."""
    explicit = settings.model_fields_set
    return settings.model_copy(update={name: 0.0 for name in RATE_SETTINGS if name not in explicit})
