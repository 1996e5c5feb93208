"""The `coffeetrace bench` commands, added to the `coffeetrace` command when this
distribution is installed (entry point `coffeetrace.commands`: `register`)."""

from __future__ import annotations

from typing import Annotated

import typer

from coffeetrace.console import friendly, say, setup_logging
from coffeetrace.embedded import database_url_for_command
from coffeetrace.ingest.service import tune_gc
from coffeetrace.settings import get_settings
from coffeetrace_bench.eudr import run as run_eudr_bench
from coffeetrace_bench.ingest import run_bench
from coffeetrace_bench.ingest_flood import run_flood_bench
from coffeetrace_bench.page import run_page_bench
from coffeetrace_bench.seed import bench_seed as run_seed_bench
from coffeetrace_bench.trace import run as run_trace_bench

bench_app = typer.Typer(help="Benchmarks (each prints a final JSON line).", no_args_is_help=True)

# `--database-url` of the ingest benchmarks
DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        help="Server to create a scratch database on "
        "(default: the configured one, else an embedded one).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the benchmarks to the `coffeetrace` command as its `bench` group."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
@friendly
def bench_ingest(
    messages: Annotated[
        int,
        typer.Option(
            "--messages",
            "-n",
            help="Messages per throughput run (1 reading each; a tenth as many with 100).",
        ),
    ] = 20_000,
    latency_seconds: Annotated[
        float, typer.Option("--latency-seconds", help="Length of the half-rate latency run.")
    ] = 10.0,
    database_url: DatabaseUrl = "",
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            help="Rounds of (a), (b), (c): rates are the best round's, ratios "
            "the median of the rounds' (each from two runs next to each other).",
        ),
    ] = 3,
    soak_seconds: Annotated[
        float,
        typer.Option(
            "--soak-seconds",
            help="Also run this long at a quarter of the maximum rate and "
            "compare RSS of the first and last minute (300 for the 5-minute check).",
        ),
    ] = 0,
) -> None:
    """MQTT end to end: bare subscriber, raw COPY, and coffeetrace ingest (final JSON line)."""
    setup_logging()
    tune_gc()  # as `coffeetrace ingest` does
    run_bench(
        get_settings(),
        messages=messages,
        latency_seconds=latency_seconds,
        database_url=database_url,
        say=say,
        repeat=max(1, repeat),
        soak_seconds=soak_seconds,
    )


@bench_app.command("ingest-flood")
@friendly
def bench_ingest_flood(
    phase_seconds: Annotated[
        float,
        typer.Option(
            "--phase-seconds",
            help="Length of each phase: a round is a baseline phase, then a flood phase.",
        ),
    ] = 10.0,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds",
            help="Rounds; the latency figures pool each kind of phase over "
            "them (each round's p99 is reported too).",
        ),
    ] = 3,
    good_devices: Annotated[
        int,
        typer.Option("--good-devices", help="Well-behaved devices, each on its own connection."),
    ] = 50,
    good_rate: Annotated[
        float, typer.Option("--good-rate", help="Messages per second of each well-behaved device.")
    ] = 2.0,
    limit: Annotated[
        float,
        typer.Option(
            "--limit",
            help="Per-device message limit of the bench's ingest "
            "(COFFEETRACE_INGEST_DEVICE_MSGS_PER_S).",
        ),
    ] = 10.0,
    burst: Annotated[
        int,
        typer.Option(
            "--burst",
            help="Its burst (COFFEETRACE_INGEST_DEVICE_MSGS_BURST), small so that "
            "the flood is over its limit within the first second.",
        ),
    ] = 20,
    factor: Annotated[
        float, typer.Option("--factor", help="The flooding device sends this many times its limit.")
    ] = 100.0,
    warmup_seconds: Annotated[
        float,
        typer.Option(
            "--warmup-seconds", help="First seconds of the good devices, in neither phase."
        ),
    ] = 2.0,
    database_url: DatabaseUrl = "",
) -> None:
    """One device floods beside 50 good ones: their latency with and without it (JSON)."""
    setup_logging()
    tune_gc()  # as `coffeetrace ingest` does
    run_flood_bench(
        get_settings(),
        phase_seconds=phase_seconds,
        database_url=database_url,
        say=say,
        rounds=rounds,
        good_devices=good_devices,
        good_rate=good_rate,
        limit=limit,
        burst=burst,
        factor=factor,
        warmup_seconds=warmup_seconds,
    )


@bench_app.command("trace")
@friendly
def bench_trace(
    trees: int = typer.Option(1_000_000, help="Trees in the store."),
    ten_million: bool = typer.Option(False, "--ten-million", help="Use 10,000,000 trees."),
    fed: int = typer.Option(10_000, help="Trees feeding the traced lot."),
    cross_fed: int | None = typer.Option(
        None,
        help="Trees feeding the cross-organisation case's retail lot (4 organisations,"
        " 8 shipments; default: --fed; 0: skip it).",
    ),
    repeat: int = typer.Option(5, help="Timed runs of each query (median)."),
    keep: bool = typer.Option(False, help="Keep the scratch database."),
    database_url: str | None = typer.Option(
        None,
        help="Server to create the scratch database on (default: the"
        " configured database's server).",
    ),
) -> None:
    """Backward and forward trace times against fetching the same rows by id."""
    setup_logging()
    n = 10_000_000 if ten_million else trees
    if database_url:
        run_trace_bench(
            database_url, trees=n, fed=fed, cross_fed=cross_fed, repeat=repeat, keep=keep, say=say
        )
        return
    # keeps an embedded server up while it runs
    with database_url_for_command(get_settings()) as url:
        run_trace_bench(
            url, trees=n, fed=fed, cross_fed=cross_fed, repeat=repeat, keep=keep, say=say
        )


@bench_app.command("page")
@friendly
def bench_page(
    trees: int = typer.Option(1_000_000, help="Trees in the store."),
    lot_trees: int = typer.Option(1000, help="Trees in the benchmarked lot."),
    duration: float = typer.Option(10.0, help="Seconds per measurement."),
    connections: int = typer.Option(64, help="Concurrent connections."),
    keep: bool = typer.Option(False, help="Keep the benchmark database."),
    storm_lots: int = typer.Option(
        100_000, min=0, help="Distinct lots of the scan storm (one tree each; 0: no storm)."
    ),
    zipf_s: float = typer.Option(
        1.1, min=0.01, help="Zipf exponent of the storm's lot popularity."
    ),
    workers: int = typer.Option(2, min=1, help="uvicorn workers measured beside one."),
    loadgen: str = typer.Option("auto", help="auto (wrk when on PATH), wrk or builtin."),
) -> None:
    """Provenance page requests/s and p99 (warm, cold, scan storm) against an async
    endpoint answering the page's bytes, with one worker and with --workers."""
    setup_logging()
    settings = get_settings()
    # keeps an embedded server up while it runs, as `bench trace` does
    with database_url_for_command(settings) as url:
        run_page_bench(
            settings.model_copy(update={"database_url": url}),
            trees=trees,
            lot_trees=lot_trees,
            duration_s=duration,
            connections=connections,
            keep=keep,
            say=say,
            storm_lots=storm_lots,
            zipf_s=zipf_s,
            workers=workers,
            loadgen=loadgen,
        )


@bench_app.command("seed")
@friendly
def bench_seed(
    trees: int = typer.Option(1_000_000, "--trees", help="Trees to seed."),
    seed: int = typer.Option(2025, "--seed"),
    keep: bool = typer.Option(False, "--keep", help="Keep the scratch database."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Bulk tree seeding vs raw COPY of the same rows (final JSON line)."""
    setup_logging()
    with database_url_for_command(get_settings()) as url:
        run_seed_bench(url, trees=trees, seed=seed, keep=keep, say=say, progress=not no_progress)


@bench_app.command("eudr")
@friendly
def bench_eudr(
    trees: int = typer.Option(
        10_000, help="Trees feeding the lot (10 per plot, 2 plots per farm; a multiple of 2,000)."
    ),
    repeat: int = typer.Option(5, help="Timed runs of each measurement (median)."),
    keep: bool = typer.Option(False, help="Keep the scratch database."),
) -> None:
    """A lot's DDS build and EUDR readiness against reading the same rows by id (JSON)."""
    setup_logging()
    settings = get_settings()
    with database_url_for_command(settings) as url:  # keeps an embedded server up
        run_eudr_bench(
            url,
            max_cherry_kg_per_ha=settings.eudr_max_cherry_kg_per_ha,
            trees=trees,
            repeat=max(1, repeat),
            keep=keep,
            say=say,
        )
