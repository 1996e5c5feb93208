"""The local zone of an EPCIS event's place, from the tz database's country table."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from coffeetrace.trace import zones

TABLE = (
    "# comment lines and blank lines are skipped\n"
    "\n"
    "VN\t+1045+10640\tAsia/Ho_Chi_Minh\n"
    "US\t+404251-0740023\tAmerica/New_York\tEastern (most areas)\n"
    "US\t+340308-1181434\tAmerica/Los_Angeles\tPacific\n"
    "BR\t-2332-04637\tAmerica/Sao_Paulo\tBrazil (southeast: GO, DF, MG, ES, RJ, SP, PR, SC, RS)\n"
    "BR\t-0308-06001\tAmerica/Manaus\tAmazonas (east)\n"
)


def test_the_table_is_parsed_with_its_coordinates() -> None:
    table = zones.parse_zone_table(TABLE)
    assert sorted(table) == ["BR", "US", "VN"]
    (vn,) = table["VN"]
    assert vn.zone == "Asia/Ho_Chi_Minh"
    assert vn.lat == pytest.approx(10 + 45 / 60) and vn.lon == pytest.approx(106 + 40 / 60)
    ny = table["US"][0]
    assert ny.lat == pytest.approx(40 + 42 / 60 + 51 / 3600)
    assert ny.lon == pytest.approx(-(74 + 0 / 60 + 23 / 3600))


def test_a_country_with_several_zones_takes_the_nearest() -> None:
    table = zones.parse_zone_table(TABLE)
    assert zones.zone_name("vn", table=table) == "Asia/Ho_Chi_Minh"
    assert zones.zone_name("VN", 108.05, 12.68, table=table) == "Asia/Ho_Chi_Minh"
    assert zones.zone_name("US", -122.4, 37.8, table=table) == "America/Los_Angeles"
    assert zones.zone_name("US", -71.1, 42.4, table=table) == "America/New_York"
    assert zones.zone_name("BR", -60.7, -2.5, table=table) == "America/Manaus"
    assert zones.zone_name("US", table=table) == "America/New_York"  # no place: the first
    assert zones.zone_name("XX", 1.0, 1.0, table=table) is None
    assert zones.zone_name(None, table=table) is None


def test_the_system_table_knows_vietnam() -> None:
    if not zones.zone_table():
        pytest.skip("no tz database country table (zone.tab) on this system")
    assert zones.zone_name("VN", 108.05, 12.68) == "Asia/Ho_Chi_Minh"
    assert zones.zone_name("ID", 106.8, -6.2) == "Asia/Jakarta"
    assert zones.zone_name("ET", 38.7, 9.0) == "Africa/Addis_Ababa"


@pytest.mark.parametrize(
    ("zone", "at", "offset"),
    [
        ("Asia/Ho_Chi_Minh", datetime(2026, 11, 10, 7, 30, tzinfo=UTC), "+07:00"),
        ("America/New_York", datetime(2026, 1, 15, 12, tzinfo=UTC), "-05:00"),
        ("America/New_York", datetime(2026, 7, 15, 12, tzinfo=UTC), "-04:00"),  # summer time
        ("Asia/Kathmandu", datetime(2026, 3, 1, tzinfo=UTC), "+05:45"),
        ("Pacific/Kiritimati", datetime(2026, 3, 1, tzinfo=UTC), "+14:00"),
        (None, datetime(2026, 3, 1, tzinfo=UTC), "+00:00"),
    ],
)
def test_the_offset_is_the_zone_s_at_that_instant(
    zone: str | None, at: datetime, offset: str
) -> None:
    assert zones.utc_offset(at, ZoneInfo(zone) if zone else None) == offset


def test_an_unknown_zone_name_gives_none() -> None:
    assert zones.zone_info("Mars/Olympus_Mons") is None
    assert zones.zone_info(None) is None
    assert zones.zone_info("Asia/Ho_Chi_Minh") == ZoneInfo("Asia/Ho_Chi_Minh")
