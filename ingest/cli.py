"""Commands of this package for the `coffeetrace` CLI: ingest, broker-config, bench ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench: typer.Typer, export: typer.Typer) -> None:
    """Add this package's commands to the CLI."""
    from coffeetrace.cli import friendly, say, setup_logging

    @app.command()
    @friendly
    def ingest(verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                                    help="Debug logs.")] = False) -> None:
        """Consume device messages from the broker into the database until SIGTERM/Ctrl-C."""
        import signal
        import threading

        from coffeetrace.ingest.retention import LedgerPruner
        from coffeetrace.ingest.service import IngestService, tune_gc

        from coffeetrace.settings import get_settings

        setup_logging(verbose)
        tune_gc()
        settings = get_settings()
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        service = IngestService(settings)
        service.start()
        LedgerPruner(settings, stop).start()
        port = settings.ingest_metrics_port
        say(f"ingest: {service.topic_filter} -> {settings.effective_database_url().split('@')[-1]}"
            + (f"; metrics on :{port}/metrics" if port else ""))
        try:
            while not stop.wait(0.5) and service.healthy:
                pass
        finally:
            service.stop(timeout=10)
        if not service.healthy and not stop.is_set():
            # the worker process died: exit non-zero so that the supervisor restarts us (the
            # broker kept everything not acknowledged)
            say("ingest failed: its worker process exited; nothing uncommitted was acknowledged")
            raise SystemExit(1)
        say("ingest stopped: received messages committed and acknowledged")

    @app.command("broker-config")
    @friendly
    def broker_config(out: Annotated[Path, typer.Option(
            "--out", help="Folder for the `passwords` and `acl` files (mounted as "
            "/mosquitto/config/auth/).")]) -> None:
        """Write the Mosquitto password and ACL files from the device registry."""
        from coffeetrace.ingest.brokerconfig import write_broker_auth

        from coffeetrace import db
        from coffeetrace.settings import get_settings

        settings = get_settings()
        with db.connect(settings.effective_database_url(),
                        timeout_s=settings.db_connect_timeout_s) as conn:
            auth = write_broker_auth(conn, settings, out)
        say(f"wrote {auth.passwords} ({auth.devices} devices + {auth.ingest_user}) and {auth.acl}; "
            "reload Mosquitto (SIGHUP) to apply")

    @bench.command("ingest")
    @friendly
    def bench_ingest(
        messages: Annotated[int, typer.Option(
            "--messages", "-n", help="Messages per throughput run (1 reading each; a tenth "
            "as many with 100).")] = 20_000,
        latency_seconds: Annotated[float, typer.Option(
            "--latency-seconds", help="Length of the half-rate latency run.")] = 10.0,
        database_url: Annotated[str, typer.Option(
            "--database-url", help="Server to create a scratch database on "
            "(default: the configured one, else an embedded one).")] = "",
        repeat: Annotated[int, typer.Option(
            "--repeat", help="Rounds of (a), (b), (c): rates are the best round's, ratios "
            "the median of the rounds' (each from two runs next to each other).")] = 3,
        soak_seconds: Annotated[float, typer.Option(
            "--soak-seconds", help="Also run this long at a quarter of the maximum rate and "
            "compare RSS of the first and last minute (300 for the 5-minute check).")] = 0,
    ) -> None:
        """MQTT end to end: bare subscriber, raw COPY, and coffeetrace ingest (final JSON line)."""
        from coffeetrace.ingest.bench import run_bench
        from coffeetrace.ingest.service import tune_gc

        from coffeetrace.settings import get_settings

        setup_logging()
        tune_gc()  # as `coffeetrace ingest` does
        run_bench(get_settings(), messages=messages, latency_seconds=latency_seconds,
                  database_url=database_url, say=say, repeat=max(1, repeat),
                  soak_seconds=soak_seconds)
