"""The Today screen: the day's and the season's harvest by farm and plot, devices
reporting and silent, dead letters of the last 24 hours, plausibility flags, and the lots
waiting for their next step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from coffeetrace.api.console import web
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "console_pages.sql")
router = APIRouter(route_class=web.ConsoleRoute)

# The step a lot of each kind usually waits for (packed lots wait for none).
NEXT_STEP = {
    "cherry": "drying",
    "dried_cherry": "hulling",
    "green": "packing",
    "roasted": "packing",
}
# A season starts on 1 August, as the plausibility rules count it (picking: Oct-Jan).
SEASON_START_MONTH = 8
DEVICE_LOOKBACK_S = 7 * 24 * 3600


def day_and_season_start(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Midnight of today and of the season's first day, in the console's time zone."""
    local = now.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    year = local.year if local.month >= SEASON_START_MONTH else local.year - 1
    return day, day.replace(year=year, month=SEASON_START_MONTH, day=1)


@router.get("/")
def today(request: Request, conn: Conn, session: Viewer) -> Response:
    settings = web.settings_of(request)
    coop = session.cooperative_id
    now = datetime.now(UTC)
    day_start, season_start = day_and_season_start(now, ZoneInfo(settings.console_time_zone))
    by_plot = conn.execute(
        SQL["console_harvest_by_plot"],
        {"cooperative_id": coop, "day_start": day_start, "season_start": season_start},
    ).fetchall()
    devices = conn.execute(
        SQL["console_devices"],
        {
            "cooperative_id": coop,
            "lookback_s": DEVICE_LOOKBACK_S,
            "limit": settings.console_page_rows,
        },
    ).fetchall()
    silent_before = now - timedelta(seconds=settings.console_device_silent_s)
    for d in devices:
        d["silent"] = d["last_seen"] is None or d["last_seen"] < silent_before
    waiting = conn.execute(
        SQL["console_waiting_lots"],
        {"cooperative_id": coop, "kinds": list(NEXT_STEP), "limit": settings.console_page_rows},
    ).fetchall()
    for lot in waiting:
        lot["next_step"] = NEXT_STEP[lot["kind"]]
    return web.page(
        request,
        "today.html",
        by_plot=by_plot,
        today_kg=sum(r["today_kg"] for r in by_plot),
        season_kg=sum(r["season_kg"] for r in by_plot),
        season_start=season_start.date(),
        devices=devices,
        reporting=sum(1 for d in devices if not d["silent"]),
        silent=sum(1 for d in devices if d["silent"]),
        dead_letters=conn.execute(
            SQL["console_dead_letters_by_reason"], {"cooperative_id": coop}
        ).fetchall(),
        flags=conn.execute(SQL["console_flag_counts"], {"cooperative_id": coop}).fetchall(),
        waiting=waiting,
    )
