"""Topic layout of the device contract: `{prefix}/devices/{device_id}/{kind}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

KINDS = ("telemetry", "harvest", "status")
# "{cooperative code}.{the cooperative's own id}" (trace/registry.py), or an id registered
# before ids were qualified (migration 0049)
_DEVICE_ID = re.compile(r"^([a-z0-9][a-z0-9-]{1,39}\.)?[A-Za-z0-9_-]{3,64}$")


def subscription(prefix: str, shared_group: str = "") -> str:
    """The filter ingest subscribes to, as a shared subscription when a group is set."""
    base = f"{prefix}/devices/+/+"
    return f"$share/{shared_group}/{base}" if shared_group else base


def device_topic(prefix: str, device_id: str, kind: str) -> str:
    return f"{prefix}/devices/{device_id}/{kind}"


@dataclass(frozen=True)
class TopicInfo:
    device_id: str
    kind: str


@lru_cache(maxsize=65536)  # a few topics per device, seen over and over
def parse_topic(prefix: str, topic: str) -> TopicInfo | None:
    """Device and kind of a topic under `prefix`, or None when it is not a device topic."""
    head = f"{prefix}/devices/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/")
    if len(rest) != 2 or rest[1] not in KINDS or not _DEVICE_ID.match(rest[0]):
        return None
    return TopicInfo(device_id=rest[0], kind=rest[1])


class Incoming(NamedTuple):
    """A message as it left the broker: the only type that crosses the paho boundary.

    A named tuple: cheap to build on the thread that also parses packets, and one compact
    pickle on its way to the worker process."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which MQTT connection delivered it (acks must go back on it)
    received_at: float  # time.time() when paho handed it over
