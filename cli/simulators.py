"""Commands of this package for the `coffeetrace` CLI: simulate."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import date, datetime

import typer
from rich.table import Table

from coffeetrace.cli.apps import app
from coffeetrace.cli.runner import running_ingest, start_servers
from coffeetrace.console import console, friendly, say, setup_logging
from coffeetrace.errors import ValidationFailed
from coffeetrace.settings import get_settings
from coffeetrace.simulators.fleet import Pacing
from coffeetrace.simulators.plan import WorldSpec
from coffeetrace.simulators.simulate import SimOptions, fault_preset
from coffeetrace.simulators.simulate import simulate as run_simulation


def _date(value: str | None, option: str) -> date | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date() if value else None
    except ValueError:
        raise ValidationFailed(
            f"{option} {value!r} is not a date (YYYY-MM-DD)", field=option
        ) from None


@app.command()
@friendly
def simulate(
    seed: int = typer.Option(2025, "--seed", help="Same seed, same world and messages."),
    coop: str = typer.Option("", "--coop", help="Cooperative code (default sim-<seed>)."),
    farms: int = typer.Option(8, "--farms", help="Farms (about 1.5 ha each)."),
    trees: int = typer.Option(
        0,
        "--trees",
        help="Seed exactly this many trees instead "
        "(farms are added as needed; bulk COPY above 20,000).",
    ),
    harvest_trees: int = typer.Option(
        60, "--harvest-trees", help="Trees per plot with per-tree harvest records."
    ),
    season: int = typer.Option(2025, "--season", help="Season year (harvest Oct-Jan)."),
    start: str = typer.Option("", "--start", help="First simulated day (default <season>-05-01)."),
    end: str = typer.Option(
        "", "--end", help="Day after the last (default <season+1>-02-01; never later than now)."
    ),
    soil_interval: int = typer.Option(
        1800, "--soil-interval", help="Seconds between soil readings."
    ),
    weather_interval: int = typer.Option(
        600, "--weather-interval", help="Seconds between weather readings."
    ),
    faults: str = typer.Option("none", "--faults", help="Fault preset: none, some, all."),
    fault_scale: float = typer.Option(1.0, "--fault-scale", help="Multiply the preset's rates."),
    accel: float = typer.Option(
        0.0,
        "--accel",
        help="Simulated seconds per wall second (0: as fast as the broker takes them).",
    ),
    rate: float = typer.Option(0.0, "--rate", help="Load mode: publish N messages/s."),
    duration: float = typer.Option(0.0, "--duration", help="Stop after this many seconds."),
    devices: int = typer.Option(
        0, "--devices", help="Publish from the first N devices only (default: all; load mode: 100)."
    ),
    telemetry_only: bool = typer.Option(False, "--telemetry-only", help="No harvests."),
    seed_only: bool = typer.Option(False, "--seed-only", help="Seed, publish nothing."),
    ingest: bool = typer.Option(False, "--ingest", help="Run ingest in this process."),
    reconcile: bool = typer.Option(
        False, "--reconcile", help="Wait for the store and compare its counts with what was sent."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Seed a simulated Đắk Lắk cooperative and publish its devices' season over MQTT."""

    setup_logging()
    spec = WorldSpec(
        coop_code=coop or f"sim-{seed}",
        coop_name=f"Simulated cooperative {coop or seed}",
        seed=seed,
        farms=farms,
        trees=trees or None,
        harvest_trees_per_plot=harvest_trees,
        season_year=season,
    )
    max_devices = devices or (100 if rate else None)
    opts = SimOptions(
        spec=spec,
        start=_date(start, "--start"),
        end=_date(end, "--end"),
        soil_interval_s=soil_interval,
        weather_interval_s=weather_interval,
        faults=fault_preset(faults, fault_scale),
        pacing=Pacing(accel=accel, rate=rate, duration_s=duration or None),
        max_devices=max_devices,
        harvest=not telemetry_only and not rate,
        publish=not seed_only,
    )
    with ExitStack() as stack:
        settings = start_servers(get_settings(), stack, say, need_broker=not seed_only)
        result = run_simulation(
            settings,
            opts,
            say=say,
            progress=not no_progress,
            consumer=running_ingest(settings) if ingest else None,
            reconcile=reconcile,
        )
    out: dict[str, object] = {
        "command": "simulate",
        "cooperative": spec.coop_code,
        "trees": result.world.trees,
        "seed_s": round(result.seed_s, 3),
    }
    if result.stats is not None:
        table = Table("counter", "sent", title="simulation")
        for key, value in result.stats.summary_rows():
            table.add_row(key, value)
        console.print(table)
        out["stats"] = result.stats.as_dict()
        out["publish_s"] = round(result.publish_s, 3)
    if result.store is not None:
        out["store"] = {
            k: (str(v) if not isinstance(v, int) else v) for k, v in result.store.items()
        }
        out["reconciled"] = result.reconciled
        say(
            ("[green]reconciled[/]: " if result.reconciled else "[red]NOT reconciled[/]: ")
            + json.dumps(out["store"])
        )
    print(json.dumps(out, default=str), flush=True)
    if result.reconciled is False:
        raise typer.Exit(1)
