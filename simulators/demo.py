"""`coffeetrace up --demo`: a demo cooperative with a season of history and a packed lot.

`start_demo` seeds (or finds) the demo cooperative, starts its fleet in a background
thread — first replaying the past season (May 2025 to January 2026) with time
acceleration, then publishing live telemetry until `stop_event` is set — waits until
ingest has stored the harvests, and turns them into a cherry lot that is dried, hulled,
graded and packed through the trace functions. It returns the packed lot's page URL.
A second start finds the same cooperative and lot and only resumes live telemetry.
Device passwords are kept in `{data_dir}/simulator-credentials.json` across starts, and
given to a broker that takes changes at once (dynsec) as they are issued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, cast

from coffeetrace import db
from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace.simulators.faults import FaultConfig
from coffeetrace.simulators.fleet import FleetRun, Pacing, publish_run
from coffeetrace.simulators.physics import LOCAL
from coffeetrace.simulators.plan import WorldPlan, WorldSpec, make_plan
from coffeetrace.simulators.publisher import Publisher
from coffeetrace.simulators.seeding import Conn, SeededWorld, seed_world
from coffeetrace.simulators.simulate import (
    credentials_path,
    issue_on_broker,
    load_credentials,
    save_credentials,
)
from coffeetrace.simulators.stats import SimStats
from coffeetrace.simulators.streams import DeviceFaults, Timing
from coffeetrace.sql import load_queries
from coffeetrace.trace import checkpoints, eudr_evidence
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lots import build_cherry_lot
from coffeetrace.trace.processing import record_transformation
from coffeetrace.trace.rules import TraceRules

SQL = load_queries("coffeetrace.simulators", "simulators.sql")

log = logging.getLogger(__name__)

DEMO_SPEC = WorldSpec(
    coop_code="demo-ea-tu",
    coop_name="Hợp tác xã Cà phê Ea Tu (demo)",
    seed=2025,
    farms=8,
    harvest_trees_per_plot=40,
    season_year=2025,
)
SEASON_START = datetime(2025, 5, 1, tzinfo=LOCAL)
SEASON_END = datetime(2026, 2, 1, tzinfo=LOCAL)
REPLAY_WALL_S = 20.0  # the past season is replayed in about this many seconds
HISTORY_INTERVAL_S = 3 * 3600
LIVE_INTERVAL_S = 60
LOT_FARMS = 4  # farms whose harvests make the demo lot
CODES = {
    "cherry": "EATU25-C01",
    "dried": "EATU25-D01",
    "green": "EATU25-G01",
    "graded": "EATU25-S16",
    "undersize": "EATU25-S13",
    "packed": "EATU25-PK01",
}
BAG_KG = Decimal("60")


@dataclass
class DemoInfo:
    page_url: str
    cooperative_code: str
    lot_code: str
    lot_public_id: str
    farms: int
    trees: int
    devices: int
    harvests_stored: int
    seeded_now: bool
    history: SimStats | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class _FleetThread(threading.Thread):
    """Replays the season (when asked), then publishes live telemetry until stopped."""

    def __init__(
        self,
        settings: Settings,
        world: SeededWorld,
        stop: threading.Event,
        *,
        replay: bool,
        replay_s: float = REPLAY_WALL_S,
        live_interval_s: int = LIVE_INTERVAL_S,
    ) -> None:
        super().__init__(name="demo-fleet", daemon=True)
        self.settings, self.world, self.stop, self.replay = settings, world, stop, replay
        self.replay_s, self.live_interval_s = replay_s, live_interval_s
        self.history_done = threading.Event()
        self.history: SimStats | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        plan = self.world.plan
        publisher = Publisher(
            self.settings.effective_mqtt_url(), self.settings.topic_prefix, self.world.credentials
        )
        try:
            publisher.connect(self.world.device_ids)
            if self.replay:
                self.history = publish_run(
                    history_run(plan, self.replay_s), publisher, stop=self.stop
                )
                publisher.wait_published(60)
                log.info("demo_history_published %s", self.history.as_dict())
            self.history_done.set()
            now = datetime.now(tz=LOCAL)
            live = FleetRun(
                plan,
                Timing(
                    start=now,
                    end=None,
                    soil_interval_s=self.live_interval_s,
                    weather_interval_s=self.live_interval_s,
                    status_every_s=3600,
                    seq_start=int(now.timestamp()),
                    harvest=False,
                ),
                FaultConfig(device=DeviceFaults(skew_share=0.3, max_skew_s=60)),
                Pacing(accel=1.0),
            )
            publish_run(live, publisher, stop=self.stop)
        except BaseException as exc:  # reported by start_demo, logged here
            self.error = exc
            log.exception("demo_fleet_failed")
        finally:
            self.history_done.set()
            publisher.close(graceful=not isinstance(self.error, ConfigError))


def history_run(plan: WorldPlan, replay_s: float = REPLAY_WALL_S) -> FleetRun:
    """The past season, with a little of every field behaviour."""
    end = min(SEASON_END, datetime.now(tz=LOCAL) - timedelta(hours=1))
    faults = FaultConfig(
        device=DeviceFaults(
            offline_rate=0.03, repeat_rate=0.5, skew_share=0.3, max_skew_s=90, flush_batch=24
        ),
        duplicate_rate=0.01,
        reorder_rate=0.01,
        malformed_rate=0.002,
    )
    timing = Timing(
        start=SEASON_START,
        end=end,
        soil_interval_s=HISTORY_INTERVAL_S,
        weather_interval_s=HISTORY_INTERVAL_S,
        status_every_s=7 * 86400,
    )
    accel = (end - SEASON_START).total_seconds() / max(replay_s, 0.1)
    return FleetRun(plan, timing, faults, Pacing(accel=accel))


def start_demo(
    settings: Settings,
    stop_event: threading.Event,
    say: Callable[[str], None],
    *,
    spec: WorldSpec = DEMO_SPEC,
    wait_s: float = 75.0,
    replay_s: float = REPLAY_WALL_S,
    live_interval_s: int = LIVE_INTERVAL_S,
) -> DemoInfo:
    """Seed the demo cooperative, start its fleet and return its packed lot's page."""
    plan = make_plan(spec)
    url = settings.effective_database_url()
    known = load_credentials(settings)
    with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn, conn.transaction():
        # the passwords of an earlier run are kept (only their hashes are stored), so
        # whoever copied one from the credentials file can go on publishing with it
        world = seed_world(
            conn, plan, keys=KeyRing(settings.effective_keys_dir()), known_passwords=known
        )
        issue_on_broker(settings, world.credentials, known)
        packed = cast(
            dict[str, Any] | None,
            conn.execute(
                SQL["lot_by_code"],
                {"cooperative_id": world.cooperative_id, "code": CODES["packed"]},
            ).fetchone(),
        )
    say(
        f"demo cooperative {spec.coop_code}: {len(plan.farms)} farms, {len(plan.plots)} plots, "
        f"{world.trees} trees, {len(plan.devices)} devices"
        + (" (seeded now)" if world.created else " (found from an earlier run)")
    )
    save_credentials(settings, world.credentials)
    say(
        f"device passwords in {credentials_path(settings)} (MQTT user name and client id: "
        "the device id)"
    )
    fleet = _FleetThread(
        settings,
        world,
        stop_event,
        replay=packed is None,
        replay_s=replay_s,
        live_interval_s=live_interval_s,
    )
    fleet.start()
    if packed is None:
        say("replaying the 2025 season (May 2025 - January 2026) over MQTT ...")
        harvests = _wait_for_harvests(settings, world, fleet, wait_s)
        with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn, conn.transaction():
            packed = build_demo_lot(conn, world, settings)
        with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn:
            # committed: the witness may now see the checkpoint the lot's writes signed
            checkpoints.observe(conn, KeyRing(settings.effective_keys_dir()), world.cooperative_id)
        say(
            f"stored {harvests} harvest weighings; lot {CODES['packed']} built, dried, "
            "hulled, graded and packed"
        )
    else:
        with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn:
            harvests = _count(conn, world.cooperative_id)
    if fleet.error is not None:
        raise ConfigError(f"the demo fleet stopped: {fleet.error}")
    public_id = packed["public_id"]
    return DemoInfo(
        page_url=f"{settings.public_base_url.rstrip('/')}/l/{public_id}",
        cooperative_code=spec.coop_code,
        lot_code=CODES["packed"],
        lot_public_id=public_id,
        farms=len(plan.farms),
        trees=world.trees,
        devices=len(plan.devices),
        harvests_stored=harvests,
        seeded_now=world.created,
        history=fleet.history,
        thread=fleet,
    )


def _count(conn: Conn, cooperative_id: Any) -> int:
    row = cast(
        dict[str, Any],
        conn.execute(SQL["harvest_count"], {"cooperative_id": cooperative_id}).fetchone(),
    )
    return int(row["n"])


def _wait_for_harvests(
    settings: Settings, world: SeededWorld, fleet: _FleetThread, wait_s: float
) -> int:
    """Poll until every harvest the replay sent is stored (or the wait is over)."""
    deadline = time.monotonic() + wait_s
    url = settings.effective_database_url()
    n = 0
    with db.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = _count(conn, world.cooperative_id)
            if fleet.error is not None:
                raise ConfigError(f"the demo fleet stopped: {fleet.error}")
            if (
                fleet.history_done.is_set()
                and fleet.history is not None
                and (n >= fleet.history.unique_harvest_records)
            ):
                return int(n)
            time.sleep(0.5)
    if n == 0:
        raise ConfigError(
            "no harvest reached the database within "
            f"{wait_s:g} s: is ingest running and subscribed to "
            f"{settings.topic_prefix}/devices/+/+?"
        )
    log.warning("demo_harvests_partial stored=%s", n)
    return int(n)


def _kg(value: Decimal | float, ratio: str) -> Decimal:
    return (Decimal(str(value)) * Decimal(ratio)).quantize(Decimal("0.001"), ROUND_DOWN)


def build_demo_lot(conn: Conn, world: SeededWorld, settings: Settings) -> dict[str, Any]:
    """Cherry lot of the first farms' harvests -> drying -> hulling -> grading -> packing."""
    coop = world.cooperative_id
    farms = [world.farm_ids[f.code] for f in world.plan.farms[:LOT_FARMS]]
    rules = TraceRules.from_settings(settings)
    keys = KeyRing(settings.effective_keys_dir())
    cherry = build_cherry_lot(
        conn,
        coop,
        code=CODES["cherry"],
        farm_ids=farms,
        since=datetime(2025, 10, 1, tzinfo=LOCAL),
        until=datetime(2026, 2, 1, tzinfo=LOCAL),
        rules=rules,
        keys=keys,
    )
    patio = "Sân phơi HTX Ea Tu, Buôn Ma Thuột"
    mill = "Xưởng chế biến HTX Ea Tu, Buôn Ma Thuột"

    def step(
        name: str,
        when: datetime,
        lot: dict[str, Any],
        outputs: list[dict[str, Any]],
        measurements: dict[str, Any],
        place: str = mill,
    ) -> list[dict[str, Any]]:
        kg = sum((Decimal(str(o["kg"])) for o in outputs), Decimal(0))
        result = record_transformation(
            conn,
            coop,
            step=name,
            occurred_at=when,
            inputs=[(lot["id"], lot["quantity_kg"])],
            outputs=outputs,
            place=place,
            measurements=measurements,
            rules=rules,
            keys=keys,
        )
        log.info("demo_step step=%s in_kg=%s out_kg=%s", name, lot["quantity_kg"], kg)
        return list(result["outputs"])

    cherry_kg = cherry["quantity_kg"]
    dried = step(
        "drying",
        datetime(2026, 2, 3, 16, tzinfo=LOCAL),
        cherry,
        [{"code": CODES["dried"], "kg": _kg(cherry_kg, "0.42"), "kind": "dried_cherry"}],
        {"method": "natural, sun-dried on patio", "days": 16, "moisture_pct": 12.8},
        place=patio,
    )[0]
    green = step(
        "hulling",
        datetime(2026, 2, 10, 9, tzinfo=LOCAL),
        dried,
        [{"code": CODES["green"], "kg": _kg(dried["quantity_kg"], "0.52"), "kind": "green"}],
        {"moisture_pct": 12.5, "husk_kg": str(_kg(dried["quantity_kg"], "0.46"))},
    )[0]
    graded = step(
        "grading",
        datetime(2026, 2, 12, 10, tzinfo=LOCAL),
        green,
        [
            {
                "code": CODES["graded"],
                "kg": _kg(green["quantity_kg"], "0.82"),
                "kind": "green",
                "product_id": world.product_ids.get("green"),
            },
            {"code": CODES["undersize"], "kg": _kg(green["quantity_kg"], "0.17"), "kind": "green"},
        ],
        {"screen_size": 16, "defect_count": 38, "moisture_pct": 12.4, "black_broken_pct": 2.1},
    )
    s16 = graded[0]
    bags = (Decimal(str(s16["quantity_kg"])) // BAG_KG) or Decimal(1)
    bag_kg = min(bags * BAG_KG, Decimal(str(s16["quantity_kg"])))
    packed = step(
        "packing",
        datetime(2026, 2, 14, 8, tzinfo=LOCAL),
        {"id": s16["id"], "quantity_kg": bag_kg},
        [
            {
                "code": CODES["packed"],
                "kg": bag_kg,
                "kind": "packed",
                "product_id": world.product_ids.get("packed"),
            }
        ],
        {"bags": int(bag_kg // BAG_KG) or 1, "bag_kg": int(BAG_KG), "packaging": "jute bag"},
    )[0]
    # EUDR readiness (trace/eudr_readiness.py): `export dds` needs every plot screened, and
    # the demo's replanted trees (after 2020, on plots planted long before) need land-use
    # evidence; a demo screening says both, so the demo's statement can be exported
    eudr_evidence.screen_lot_plots(
        conn,
        keys,
        coop,
        packed["id"],
        {
            "risk": "low",
            "source": "demo screening",
            "analysis_date": "2026-02-14",
            "note": "simulated result: no tree cover loss after 2020",
            "land_use_note": "coffee plot before 2021: later trees replant or graft old ones",
        },
        recorded_by="demo",
    )
    return packed
