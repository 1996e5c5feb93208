"""The fleet over a real broker into the real ingest service and database.

"A simulated season with every fault turned on reconciles exactly": every good record
stored once, every malformed message dead-lettered once, and the counts the simulator
prints agree with what is read back from the store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from coffeetrace.simulators.fleet import Pacing
from coffeetrace.simulators.physics import LOCAL
from coffeetrace.simulators.plan import WorldSpec
from coffeetrace.simulators.simulate import SimOptions, expected_store, fault_preset, simulate
from coffeetrace.trace.keys import KeyRing


@pytest.fixture
def ingest(sim_settings: Settings) -> Iterator[IngestService]:
    service = IngestService(sim_settings)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def test_a_season_with_every_fault_reconciles(
    sim_settings: Settings, ingest: IngestService, conn: psycopg.Connection
) -> None:
    opts = SimOptions(
        spec=WorldSpec(coop_code="recon", seed=5, farms=3, harvest_trees_per_plot=15),
        soil_interval_s=6 * 3600,
        weather_interval_s=4 * 3600,
        faults=fault_preset("all", 1.5),
    )
    result = simulate(sim_settings, opts, say=lambda _: None, progress=False, reconcile=True)
    stats = result.stats
    assert stats is not None
    for name in (
        "duplicate_messages",
        "malformed_messages",
        "reordered_messages",
        "offline_periods",
        "flushed_records",
        "repeated_records",
        "skewed_records",
        "batched_messages",
        "unique_harvest_records",
    ):
        assert getattr(stats, name) > 0, name
    assert result.store == expected_store(stats), (result.store, stats.as_dict())
    assert result.reconciled
    # stored once: no ledger key twice, no harvest twice
    dup = conn.execute(
        "select count(*) - count(distinct (device_id, msg_id)) as d from harvest_events"
    ).fetchone()
    assert dup == {"d": 0}
    reasons = conn.execute(
        "select split_part(reason, ':', 1) as code, count(*) as n from dead_letters group by 1"
    ).fetchall()
    assert sum(r["n"] for r in reasons) == stats.malformed_messages
    assert {r["code"] for r in reasons} >= {"invalid_json", "invalid"}
    # skewed clocks were taken at their word, within the tolerance
    latest = conn.execute("select max(time) as t from sensor_readings").fetchone()["t"]
    assert latest <= datetime.now(LOCAL)


def test_simulate_command_reconciles(
    sim_settings: Settings, monkeypatch: pytest.MonkeyPatch, ingest: IngestService
) -> None:
    from coffeetrace.cli import app

    env = {
        "COFFEETRACE_DATABASE_URL": sim_settings.database_url,
        "COFFEETRACE_MQTT_URL": sim_settings.mqtt_url,
        "COFFEETRACE_TOPIC_PREFIX": sim_settings.topic_prefix,
        "COFFEETRACE_INGEST_METRICS_PORT": "0",
    }
    args = [
        "simulate",
        "--coop",
        "cli-test",
        "--seed",
        "9",
        "--farms",
        "1",
        "--harvest-trees",
        "6",
        "--start",
        "2025-10-25",
        "--end",
        "2025-12-20",
        "--soil-interval",
        "10800",
        "--weather-interval",
        "10800",
        "--faults",
        "all",
        "--reconcile",
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["reconciled"] is True
    assert final["store"]["harvest_events"] == final["stats"]["unique_harvest_records"] > 0
    assert final["store"]["dead_letters"] == final["stats"]["malformed_messages"]


def test_load_mode_publishes_at_the_asked_rate(
    sim_settings: Settings, ingest: IngestService
) -> None:
    opts = SimOptions(
        spec=WorldSpec(coop_code="load", seed=2, farms=2),
        soil_interval_s=600,
        weather_interval_s=600,
        harvest=False,
        start=date(2025, 6, 1),
        end=date(2025, 7, 1),
        pacing=Pacing(rate=400, duration_s=2.0),
    )
    result = simulate(sim_settings, opts, say=lambda _: None, progress=False, reconcile=True)
    assert result.stats is not None
    # about rate x duration messages (bounded above by the pacing, never more); the
    # goodbye status of each device at the end is not paced
    paced = result.stats.published - result.stats.devices
    assert 0.5 * 800 <= paced <= 800 + 2
    assert result.reconciled, (result.store, result.stats.as_dict())


def test_demo_builds_a_packed_lot_once_and_keeps_publishing(
    sim_settings: Settings, ingest: IngestService, conn: psycopg.Connection, keys: KeyRing
) -> None:
    from coffeetrace.simulators.demo import CODES, start_demo
    from coffeetrace.trace import statements
    from coffeetrace.trace.jsonutil import canonical_json
    from coffeetrace.trace.verification import verify_lot

    spec = WorldSpec(coop_code="demo-test", seed=2025, farms=5, harvest_trees_per_plot=8)
    stop = threading.Event()
    lines: list[str] = []
    try:
        info = start_demo(
            sim_settings, stop, lines.append, spec=spec, replay_s=3, wait_s=90, live_interval_s=1
        )
        assert info.page_url == f"http://testserver/l/{info.lot_public_id}"
        lot = conn.execute(
            "select id, cooperative_id, kind, quantity_kg from lots where public_id = %s",
            (info.lot_public_id,),
        ).fetchone()
        assert lot["kind"] == "packed" and lot["quantity_kg"] > 0
        assert info.harvests_stored > 0
        assert verify_lot(conn, lot["id"], keys=keys)["ok"]
        served = statements.served(conn, lot["id"])
        assert served is not None
        doc = served["document"]
        assert (
            keys.verify(
                lot["cooperative_id"],
                statements.STATEMENT_DOMAIN,
                canonical_json(doc),
                served["signature"],
            )
            is None
        )
        assert [s["step"] for s in doc["steps"]][-4:] == ["drying", "hulling", "grading", "packing"]
        assert doc["farms"] and doc["trees"]
        assert "phone" not in json.dumps(doc, ensure_ascii=False)
        since = datetime.now(LOCAL) - timedelta(seconds=1)
        deadline = time.monotonic() + 30
        live = 0
        while time.monotonic() < deadline and not live:
            conn.rollback()
            live = conn.execute(
                "select count(*) as n from sensor_readings where time >= %s", (since,)
            ).fetchone()["n"]
            time.sleep(0.5)
        assert live > 0, "no live telemetry after the replay"
    finally:
        stop.set()
        info.thread.join(15)  # type: ignore[union-attr]
    conn.rollback()
    stop_again = threading.Event()
    again = start_demo(sim_settings, stop_again, lines.append, spec=spec)
    stop_again.set()
    again.thread.join(15)  # type: ignore[union-attr]
    assert again.lot_public_id == info.lot_public_id and not again.seeded_now
    assert conn.execute("select count(*) as n from cooperatives").fetchone()["n"] == 1
    assert (
        conn.execute(
            "select count(*) as n from lots where code = %s", (CODES["packed"],)
        ).fetchone()["n"]
        == 1
    )
