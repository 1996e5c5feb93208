"""Faults between the devices and the broker: duplicate sends, out-of-order delivery and
malformed payloads, each at a set rate, on top of the devices' own offline periods,
repeated flushes and clock skew (see `streams.DeviceFaults`).

Malformed messages are extra messages (never a corrupted copy of a good one), so every
good record still arrives intact and the store can be reconciled exactly: good records
stored once, malformed messages dead-lettered one each.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from coffeetrace.simulators.streams import DeviceFaults, Outgoing, dumps

# Each of these is unusable as a whole message under the MQTT contract (docs/mqtt.md).
TELEMETRY_MALFORMED = (
    "truncated_json",
    "not_utf8",
    "not_an_object",
    "missing_id",
    "bad_timestamp",
    "values_not_object",
)
HARVEST_MALFORMED = TELEMETRY_MALFORMED[:-1] + ("negative_cherry_kg", "unknown_tree")


@dataclass(frozen=True)
class FaultConfig:
    device: DeviceFaults = field(default_factory=DeviceFaults)
    duplicate_rate: float = 0.0  # share of messages published a second time
    reorder_rate: float = 0.0  # share of messages held back behind 1-4 later ones
    malformed_rate: float = 0.0  # malformed messages per good message

    @classmethod
    def none(cls) -> FaultConfig:
        return cls()

    @classmethod
    def all_on(cls, scale: float = 1.0) -> FaultConfig:
        """Every fault at a rate that shows up in a small run (scaled by `scale`)."""
        return cls(
            device=DeviceFaults(
                offline_rate=min(1.0, 0.08 * scale),
                repeat_rate=0.5,
                skew_share=0.4,
                max_skew_s=120,
                flush_batch=24,
            ),
            duplicate_rate=0.03 * scale,
            reorder_rate=0.03 * scale,
            malformed_rate=0.01 * scale,
        )


def malformed_payload(rng: random.Random, kind: str, good: Outgoing, n: int) -> bytes:
    """A payload of the given kind, shaped like the device's own messages."""
    try:
        sample = json.loads(good.payload)
    except ValueError:
        sample = {}
    record = dict(sample[0] if isinstance(sample, list) else sample)
    record.pop("seq", None)
    # a msg_id good messages never use, so no ledger entry can hide a dead letter
    record["msg_id"] = f"bad-{n}"
    if kind == "truncated_json":
        text = dumps(record)
        return text[: max(2, len(text) // 2)]
    if kind == "not_utf8":
        return b"\xff\xfe\x00" + rng.randbytes(16)
    if kind == "not_an_object":
        return rng.choice((b"42", b'"online"', b"null", b"true"))
    if kind == "missing_id":
        record.pop("msg_id")
        return dumps(record)
    if kind == "bad_timestamp":
        record["ts"] = rng.choice(("yesterday", "2025-13-45T99:00:00", ""))
        return dumps(record)
    if kind == "values_not_object":
        record["values"] = [1, 2, 3]
        return dumps(record)
    if kind == "negative_cherry_kg":
        record["cherry_kg"] = -round(rng.uniform(0.5, 5), 2)
        return dumps(record)
    if kind == "unknown_tree":
        record["tree"] = f"NO-SUCH-TREE-{n}"
        return dumps(record)
    raise ValueError(f"unknown malformed kind {kind!r}")


@dataclass(frozen=True)
class Sent:
    """One publish: the message and why it is sent."""

    message: Outgoing
    label: str  # good, status, duplicate, malformed
    malformed_kind: str = ""
    reordered: bool = False


@dataclass
class _Held:
    """A message held back (reordering) until `wait` later messages have passed it."""

    wait: int
    sent: Sent


def apply_faults(stream: Iterator[Outgoing], config: FaultConfig, seed: int) -> Iterator[Sent]:
    rng = random.Random(f"{seed}:faults")
    held: list[_Held] = []
    n_bad = 0

    def release() -> Iterator[Sent]:
        for item in held:
            item.wait -= 1
        ready = [item for item in held if item.wait <= 0]
        for item in ready:
            held.remove(item)
            yield item.sent

    for msg in stream:
        if msg.channel == "status":
            yield Sent(msg, "status")
            continue
        hold = bool(config.reorder_rate) and rng.random() < config.reorder_rate
        if hold:
            held.append(_Held(rng.randint(1, 4), Sent(msg, "good", reordered=True)))
        else:
            yield Sent(msg, "good")
            yield from release()
        # a held message is not duplicated: its copy would overtake the original
        if not hold and config.duplicate_rate and rng.random() < config.duplicate_rate:
            yield Sent(
                replace(msg, records=(), repeats=len(msg.records) + msg.repeats), "duplicate"
            )
        if config.malformed_rate and rng.random() < config.malformed_rate:
            kinds = HARVEST_MALFORMED if msg.channel == "harvest" else TELEMETRY_MALFORMED
            kind = kinds[n_bad % len(kinds)]
            n_bad += 1
            payload = malformed_payload(rng, kind, msg, n_bad)
            yield Sent(
                replace(
                    msg,
                    payload=payload,
                    records=(),
                    repeats=0,
                    readings=0,
                    harvest_kg=0.0,
                    flushed=0,
                ),
                "malformed",
                malformed_kind=kind,
            )
    for item in held:
        yield item.sent
