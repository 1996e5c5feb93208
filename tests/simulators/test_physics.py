"""Seasons, days and trees behave as in the Central Highlands."""

from __future__ import annotations

import random
import statistics
from datetime import date, datetime, timedelta

from coffeetrace.simulators.physics import (
    LOCAL,
    SoilBucket,
    Weather,
    age_factor,
    district_day,
    harvest_rounds,
    season_yield_kg,
)

DISTRICT = "Buôn Ma Thuột"


def monthly_rain(seed: int, year: int) -> dict[int, float]:
    totals = dict.fromkeys(range(1, 13), 0.0)
    day = date(year, 1, 1)
    while day.year == year:
        totals[day.month] += district_day(seed, DISTRICT, day).rain_mm
        day += timedelta(days=1)
    return totals


def test_rainy_season_may_to_october_brings_most_of_the_rain() -> None:
    for seed in (1, 2, 3):
        rain = monthly_rain(seed, 2025)
        total = sum(rain.values())
        wet = sum(rain[m] for m in range(5, 11))
        assert 1_300 < total < 2_700
        assert wet / total > 0.8
        assert rain[8] + rain[9] > 5 * (rain[1] + rain[2] + rain[12] + 1)


def test_daily_temperature_and_humidity_cycles() -> None:
    w = Weather(11, DISTRICT, 500)
    dawn, afternoon, rh_dawn, rh_afternoon = [], [], [], []
    for d in range(60):
        day = datetime(2025, 11, 1, tzinfo=LOCAL) + timedelta(days=d)
        dawn.append(w.temperature(day + timedelta(hours=5, minutes=30)))
        afternoon.append(w.temperature(day + timedelta(hours=14)))
        rh_dawn.append(w.relative_humidity(day + timedelta(hours=5, minutes=30)))
        rh_afternoon.append(w.relative_humidity(day + timedelta(hours=14)))
        assert w.solar_radiation(day + timedelta(hours=1)) == 0.0
    assert statistics.mean(afternoon) - statistics.mean(dawn) > 4.0
    assert 15 < statistics.mean(dawn) < 23 and 22 < statistics.mean(afternoon) < 32
    assert statistics.mean(rh_dawn) > statistics.mean(rh_afternoon) + 8


def test_altitude_cools_the_air() -> None:
    t = datetime(2025, 7, 1, 12, tzinfo=LOCAL)
    assert Weather(5, DISTRICT, 450).temperature(t) - Weather(5, DISTRICT, 850).temperature(t) > 2.0


def test_soil_is_wetter_in_the_rainy_season_than_at_its_start_or_after_it() -> None:
    wetter = 0
    for seed in range(5):
        w = Weather(seed, DISTRICT, 500)
        soil = SoilBucket(w, datetime(2025, 4, 20, tzinfo=LOCAL), random.Random(seed))
        early = soil.advance(datetime(2025, 5, 1, tzinfo=LOCAL))
        peak = statistics.mean(
            soil.advance(datetime(2025, m, d, tzinfo=LOCAL)) for m in (8, 9) for d in (1, 10, 20)
        )
        dry = statistics.mean(soil.advance(datetime(2026, 1, d, tzinfo=LOCAL)) for d in (5, 15, 25))
        assert min(early, dry) >= SoilBucket.WILTING - 4 and peak <= SoilBucket.SATURATION
        wetter += peak > early + 5 and peak > dry + 5
    assert wetter >= 4


def test_harvest_rounds_from_late_october_to_january() -> None:
    for i in range(50):
        rounds = harvest_rounds(3, f"FM-{i:04d}", 2025)
        assert 2 <= len(rounds) <= 4
        assert rounds[0].start >= date(2025, 10, 25)
        assert rounds[-1].start + timedelta(days=rounds[-1].days) <= date(2026, 2, 1)
        assert abs(sum(r.share for r in rounds) - 1) < 1e-9
        assert max(r.ripeness for r in rounds) >= 90


def test_yields_follow_age_and_cultivar() -> None:
    assert age_factor(1) == 0 and age_factor(4) < age_factor(6) == 1.0
    assert age_factor(30) < 1.0
    rng = random.Random(1)
    mature = [season_yield_kg(rng, "TR4", date(2010, 6, 1), 2025, 1.0) for _ in range(2000)]
    young = [season_yield_kg(rng, "TR4", date(2022, 6, 1), 2025, 1.0) for _ in range(2000)]
    trs1 = [season_yield_kg(rng, "TRS1", date(2010, 6, 1), 2025, 1.0) for _ in range(2000)]
    assert 9 < statistics.mean(mature) < 12.5  # ~10 kg cherry per mature tree
    assert statistics.mean(young) < 0.6 * statistics.mean(mature)
    assert statistics.mean(trs1) > statistics.mean(mature)
