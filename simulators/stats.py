"""What a simulation sent, counted so that tests can reconcile it with the store."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SimStats:
    """Counters of one run. "Records" are reading sets or harvest weighings (one `seq`);
    a message carries one record, or an array of them after an offline period."""

    published: int = 0  # every MQTT publish, whatever it carried
    good_messages: int = 0  # first sends of messages carrying records
    status_messages: int = 0
    duplicate_messages: int = 0  # the same message published again
    malformed_messages: int = 0
    reordered_messages: int = 0  # held back and published after later ones
    batched_messages: int = 0  # arrays of more than one record
    offline_periods: int = 0
    flushed_records: int = 0  # records that waited in a device buffer
    repeated_records: int = 0  # already-sent records repeated inside a later flush
    duplicate_records: int = 0  # records in duplicate messages, plus repeated records
    unique_records: int = 0
    unique_telemetry_records: int = 0
    unique_harvest_records: int = 0
    readings: int = 0  # metric values in unique telemetry records
    harvest_kg: float = 0.0  # cherry kg in unique harvest records (3 decimals each)
    skewed_records: int = 0  # unique records stamped by a device clock that is off
    skewed_devices: int = 0
    devices: int = 0
    first_ts: str | None = None  # simulated time of the first and last record
    last_ts: str | None = None
    malformed_by_kind: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["harvest_kg"] = round(self.harvest_kg, 3)
        data["malformed_by_kind"] = dict(sorted(self.malformed_by_kind.items()))
        return data

    def summary_rows(self) -> list[tuple[str, str]]:
        d = self.as_dict()
        rows = [(k, str(v)) for k, v in d.items() if k != "malformed_by_kind"]
        rows += [(f"malformed:{k}", str(v)) for k, v in d["malformed_by_kind"].items()]
        return rows
