"""The time zone of a place, read from the tz database's own country table (zone.tab).

EPCIS records each event's local UTC offset at the place it happened
(eventTimeZoneOffset); the project knows places by country and coordinates. The tz
database lists, for every country, its zones with the coordinates of each zone's
principal city: a country with one zone gives that zone (VN: Asia/Ho_Chi_Minh), one with
several gives the zone whose city lies nearest the place.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

TABLE = "zone.tab"  # one line per zone: country code, coordinates, zone name, comment
_COORDS = re.compile(r"^([+-]\d{4,6})([+-]\d{5,7})$")


@dataclass(frozen=True)
class ZoneEntry:
    country: str
    lat: float
    lon: float
    zone: str


def _degrees(text: str, deg_digits: int) -> float:
    sign = -1.0 if text[0] == "-" else 1.0
    digits = text[1:]
    parts = [digits[:deg_digits], digits[deg_digits : deg_digits + 2], digits[deg_digits + 2 :]]
    deg, minutes, seconds = (int(p) if p else 0 for p in parts)
    return sign * (deg + minutes / 60 + seconds / 3600)


def parse_zone_table(text: str) -> dict[str, list[ZoneEntry]]:
    """zone.tab's entries by ISO 3166 country code, in the table's order."""
    table: dict[str, list[ZoneEntry]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        match = _COORDS.match(fields[1]) if len(fields) >= 3 else None
        if match is None:
            continue
        entry = ZoneEntry(
            country=fields[0].upper(),
            lat=_degrees(match.group(1), 2),
            lon=_degrees(match.group(2), 3),
            zone=fields[2].strip(),
        )
        table.setdefault(entry.country, []).append(entry)
    return table


def _table_text() -> str | None:
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / TABLE
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:  # no system tz database: the tzdata package, when installed, ships the table
        return importlib.resources.files("tzdata").joinpath("zoneinfo", TABLE).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return None


@cache
def zone_table() -> dict[str, list[ZoneEntry]]:
    """The tz database's country table (read once); empty when the system has none."""
    text = _table_text()
    if text is None:
        log.warning("zone_table_missing tzpath=%s", ":".join(zoneinfo.TZPATH))
        return {}
    return parse_zone_table(text)


def _distance(entry: ZoneEntry, lon: float, lat: float) -> float:
    # equirectangular distance: enough to tell which of a country's cities is nearest
    dx = math.radians(entry.lon - lon) * math.cos(math.radians((entry.lat + lat) / 2))
    return math.hypot(dx, math.radians(entry.lat - lat))


def zone_name(
    country: str | None,
    lon: float | None = None,
    lat: float | None = None,
    table: dict[str, list[ZoneEntry]] | None = None,
) -> str | None:
    """The IANA zone of a place in `country` (ISO 3166 alpha-2): the country's only zone,
    or the one whose principal city is nearest (lon, lat), or without coordinates the
    first the table lists. None for a country the table does not know."""
    entries = (zone_table() if table is None else table).get((country or "").strip().upper())
    if not entries:
        return None
    if len(entries) == 1 or lon is None or lat is None:
        return entries[0].zone
    return min(entries, key=lambda e: _distance(e, float(lon), float(lat))).zone


@cache
def zone_info(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone by its IANA name; None (UTC is used) when the name is None or unknown."""
    if name is None:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("zone_unknown zone=%s", name)
        return None


def utc_offset(at: datetime, zone: zoneinfo.ZoneInfo | None) -> str:
    """The zone's offset from UTC at that instant, as "+07:00" (EPCIS
    eventTimeZoneOffset); "+00:00" without a zone."""
    offset = at.astimezone(zone or UTC).utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"
