"""Plausible Central Highlands weather, soil moisture and robusta yields.

A simple, deterministic model, calibrated on rounded public figures for Buôn Ma Thuột:
annual rain ~1,800-2,000 mm, 85-90 % of it May-October; monthly mean temperature
22-25 °C with a 6-10 °C daily range (wider in the dry season); RH ~85 % in the rainy
season and ~70-75 % in the dry season; harvest late October to January. Weather is
shared by all plots of a district (rain is spatially correlated) and cooler with altitude.
Numbers such as the cultivar offsets are modelling choices, documented in docs/simulators.md.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

LOCAL = timezone(timedelta(hours=7), "ICT")

# month -> (probability of a rainy day, mean rain on a rainy day in mm)
RAIN = {
    1: (0.05, 4.0),
    2: (0.05, 5.0),
    3: (0.10, 8.0),
    4: (0.22, 7.0),
    5: (0.55, 12.0),
    6: (0.62, 11.0),
    7: (0.68, 12.0),
    8: (0.74, 13.5),
    9: (0.74, 14.0),
    10: (0.60, 12.5),
    11: (0.35, 9.0),
    12: (0.15, 6.0),
}
# month -> mean air temperature at 500 m, degC
TEMP_MEAN = {
    1: 21.3,
    2: 22.9,
    3: 24.8,
    4: 26.0,
    5: 25.6,
    6: 24.6,
    7: 24.0,
    8: 23.9,
    9: 23.6,
    10: 23.1,
    11: 22.4,
    12: 21.3,
}
LAPSE_C_PER_M = 0.006


@dataclass(frozen=True)
class Day:
    """One district's weather on one local day."""

    rain_mm: float
    rain_start_h: float  # local hour the (afternoon) storm begins
    rain_hours: float
    temp_mean: float  # at 500 m
    temp_range: float
    cloud: float  # 0 clear .. 1 overcast
    wind_mean: float


@lru_cache(maxsize=8192)
def district_day(seed: int, district: str, day: date) -> Day:
    rng = random.Random(f"{seed}:weather:{district}:{day.isoformat()}")
    p, mean = RAIN[day.month]
    rainy = rng.random() < p
    rain = rng.expovariate(1 / mean) if rainy else 0.0
    wet_season = day.month in (5, 6, 7, 8, 9, 10)
    cloud = min(1.0, (0.55 if wet_season else 0.25) + (0.3 if rainy else 0.0) + rng.gauss(0, 0.1))
    base_range = 7.0 if wet_season else 10.0
    return Day(
        rain_mm=round(rain, 1),
        rain_start_h=rng.uniform(12.5, 18.0),
        rain_hours=rng.uniform(1.0, 4.0),
        temp_mean=TEMP_MEAN[day.month] + rng.gauss(0, 0.8),
        temp_range=max(3.0, base_range * (1 - 0.45 * max(0.0, cloud)) + rng.gauss(0, 0.7)),
        cloud=max(0.0, cloud),
        # the north-east monsoon makes the dry season windy
        wind_mean=max(0.3, (1.6 if wet_season else 3.2) + rng.gauss(0, 0.5)),
    )


def local_hour(t: datetime) -> float:
    lt = t.astimezone(LOCAL)
    return lt.hour + lt.minute / 60 + lt.second / 3600


class Weather:
    """Hourly weather of one district at one altitude."""

    def __init__(self, seed: int, district: str, altitude_m: int) -> None:
        self.seed, self.district, self.altitude_m = seed, district, altitude_m

    def day(self, t: datetime) -> Day:
        return district_day(self.seed, self.district, t.astimezone(LOCAL).date())

    def temperature(self, t: datetime) -> float:
        d = self.day(t)
        h = local_hour(t)
        # minimum near 06:00, maximum near 14:00
        if 5.5 <= h <= 14.0:
            shape = -math.cos(math.pi * (h - 5.5) / 8.5)
        else:
            hours_after = (h - 14.0) % 24
            shape = math.cos(math.pi * hours_after / 15.5)
        temp = d.temp_mean + d.temp_range / 2 * shape
        if self._raining(t):
            temp -= 2.0
        return temp - (self.altitude_m - 500) * LAPSE_C_PER_M

    def relative_humidity(self, t: datetime) -> float:
        d = self.day(t)
        wet = d.rain_mm > 0
        base = 84.0 if t.astimezone(LOCAL).month in (5, 6, 7, 8, 9, 10) else 72.0
        # humidity falls as the air warms during the day
        temp_anomaly = self.temperature(t) + (self.altitude_m - 500) * LAPSE_C_PER_M - d.temp_mean
        rh = base + (6 if wet else 0) - 3.2 * temp_anomaly + (8 if self._raining(t) else 0)
        return min(100.0, max(25.0, rh))

    def _raining(self, t: datetime) -> bool:
        d = self.day(t)
        h = local_hour(t)
        return d.rain_mm > 0 and d.rain_start_h <= h < d.rain_start_h + d.rain_hours

    def rain_between(self, t0: datetime, t1: datetime) -> float:
        """Rain in mm that fell in (t0, t1], spread evenly over each day's storm."""
        if t1 <= t0:
            return 0.0
        total = 0.0
        day = t0.astimezone(LOCAL).date()
        last = t1.astimezone(LOCAL).date()
        while day <= last:
            d = district_day(self.seed, self.district, day)
            if d.rain_mm > 0:
                start = datetime(day.year, day.month, day.day, tzinfo=LOCAL) + timedelta(
                    hours=d.rain_start_h
                )
                end = start + timedelta(hours=d.rain_hours)
                lo, hi = max(start, t0), min(end, t1)
                if hi > lo:
                    total += d.rain_mm * (hi - lo) / (end - start)
            day += timedelta(days=1)
        return total

    def solar_radiation(self, t: datetime) -> float:
        h = local_hour(t)
        if not 6.0 <= h <= 18.0:
            return 0.0
        d = self.day(t)
        clear = 1050 * math.sin(math.pi * (h - 6.0) / 12.0)
        return max(0.0, clear * (1 - 0.7 * d.cloud) * (0.35 if self._raining(t) else 1.0))

    def wind_speed(self, t: datetime) -> float:
        d = self.day(t)
        h = local_hour(t)
        return max(0.0, d.wind_mean * (0.6 + 0.8 * max(0.0, math.sin(math.pi * (h - 8) / 12))))

    def pressure(self, t: datetime) -> float:
        sea = 1010.5 + 1.2 * math.cos(2 * math.pi * (local_hour(t) - 10) / 12)  # semi-diurnal tide
        return sea * (1 - 2.25577e-5 * self.altitude_m) ** 5.25588

    def leaf_wetness(self, t: datetime) -> float:
        if self._raining(t):
            return 100.0
        rh = self.relative_humidity(t)
        return max(0.0, min(100.0, (rh - 80.0) * 5.0))


class SoilBucket:
    """Volumetric soil water content (%) of a basaltic red soil at 20-30 cm.

    Rain infiltrates (storms run off partly), water above field capacity drains in hours,
    evapotranspiration follows temperature and sunshine, and farmers irrigate in the dry
    season when the soil nears wilting point.
    """

    SATURATION = 52.0
    FIELD_CAPACITY = 38.0
    WILTING = 17.0
    ROOT_ZONE_MM = 300.0  # 1 % VWC = 3 mm of water in the layer

    def __init__(
        self, weather: Weather, start: datetime, rng: random.Random, initial: float | None = None
    ) -> None:
        self.weather = weather
        self.t = start
        self.rng = rng
        self.vwc = initial if initial is not None else rng.uniform(21.0, 25.0)
        self.next_irrigation_check = start

    def advance(self, t: datetime) -> float:
        while self.t < t:
            step_end = min(t, self.t + timedelta(hours=1))
            hours = (step_end - self.t).total_seconds() / 3600
            rain = self.weather.rain_between(self.t, step_end)
            infiltrated = rain * (0.85 if rain < 20 else 0.65)
            self.vwc += infiltrated / (self.ROOT_ZONE_MM / 100)
            if self.vwc > self.FIELD_CAPACITY:
                self.vwc -= (self.vwc - self.FIELD_CAPACITY) * (1 - math.exp(-hours / 8))
            et_mm_h = max(
                0.0,
                0.0009
                * self.weather.solar_radiation(self.t)
                * (0.5 + self.weather.temperature(self.t) / 50),
            )
            stress = max(
                0.0, min(1.0, (self.vwc - self.WILTING) / (self.FIELD_CAPACITY - self.WILTING))
            )
            self.vwc -= et_mm_h * hours * stress / (self.ROOT_ZONE_MM / 100)
            self.vwc = min(self.SATURATION, max(self.WILTING - 4, self.vwc))
            lt = step_end.astimezone(LOCAL)
            if (
                lt.month in (1, 2, 3, 4, 12)
                and self.vwc < self.WILTING + 4
                and 7 <= lt.hour < 8
                and self.rng.random() < 0.5
            ):
                self.vwc += 60 / (self.ROOT_ZONE_MM / 100)  # an irrigation round, ~60 mm
            self.t = step_end
        return self.vwc

    def soil_temperature(self, t: datetime) -> float:
        # damped, lagged air temperature; wet soil stays cooler
        lagged = self.weather.temperature(t - timedelta(hours=3))
        mean = self.weather.day(t).temp_mean - (self.weather.altitude_m - 500) * LAPSE_C_PER_M
        return mean + 0.3 * (lagged - mean) + 1.0 - 0.05 * (self.vwc - 25)


# ---------------------------------------------------------------- harvest

# Mature-tree season yield in kg fresh cherry (~10 kg/tree, DOMAIN.md) and ripening offset
# in days relative to the district schedule: modelling assumptions.
CULTIVAR_YIELD_KG = {"TR4": 10.5, "TR9": 11.5, "TR11": 10.8, "TRS1": 11.8}
CULTIVAR_OFFSET_DAYS = {"TR4": 0, "TR9": 8, "TR11": 4, "TRS1": -4}
ROUND_SHARES = {2: (0.45, 0.55), 3: (0.25, 0.5, 0.25), 4: (0.15, 0.35, 0.35, 0.15)}
ROUND_RIPENESS = {2: (84, 90), 3: (78, 93, 87), 4: (72, 90, 93, 85)}


def age_factor(age_years: float) -> float:
    """Share of a mature tree's yield: none before the 3rd season, full from the 6th to
    the 20th, then declining until the tree is stumped or replanted."""
    if age_years < 2.5:
        return 0.0
    if age_years < 6:
        return min(1.0, (age_years - 2.5) / 3.5 * 0.9 + 0.1)
    if age_years <= 20:
        return 1.0
    return max(0.45, 1.0 - 0.03 * (age_years - 20))


def season_yield_kg(
    rng: random.Random, cultivar: str, planted_on: date, season_year: int, management: float
) -> float:
    age = season_year + 0.85 - (planted_on.year + (planted_on.month - 1) / 12)
    base = CULTIVAR_YIELD_KG.get(cultivar, 10.0) * age_factor(age) * management
    # alternate bearing and tree-to-tree spread
    return base * rng.lognormvariate(0, 0.25)


@dataclass(frozen=True)
class Round:
    number: int
    start: date
    days: int
    share: float
    ripeness: float


def harvest_rounds(seed: int, farm_code: str, season_year: int) -> list[Round]:
    """The farm's picking rounds: 2-4 rounds, late October to January."""
    rng = random.Random(f"{seed}:rounds:{farm_code}")
    n = rng.choices((2, 3, 4), (0.25, 0.55, 0.2))[0]
    first = date(season_year, 10, 25) + timedelta(days=rng.randint(0, 10))
    rounds = []
    day = first
    for i in range(n):
        rounds.append(
            Round(i + 1, day, rng.randint(2, 4), ROUND_SHARES[n][i], ROUND_RIPENESS[n][i])
        )
        day += timedelta(days=rng.randint(17, 24))
    return rounds
