"""Commands of this package for the `coffeetrace` CLI: ingest, broker-config, bench ingest
and bench ingest-flood."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# `--database-url` of the ingest benchmarks
DatabaseUrl = Annotated[str, typer.Option(
    "--database-url", help="Server to create a scratch database on "
    "(default: the configured one, else an embedded one).")]


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
            failure = None if service.healthy else (service.failure or "the worker exited")
            service.stop(timeout=10)
        if failure is not None:
            # exit non-zero so that the supervisor restarts us (the broker kept everything
            # not acknowledged)
            say(f"ingest failed: {failure}; nothing uncommitted was acknowledged")
            raise SystemExit(1)
        if service.unacknowledged:
            say(f"ingest stopped with {service.unacknowledged} messages not committed (the "
                "database did not answer in time); the broker redelivers them")
            raise SystemExit(1)
        say("ingest stopped: received messages committed and acknowledged")

    @app.command("broker-config")
    @friendly
    def broker_config(out: Annotated[Path, typer.Option(
            "--out", help="Folder for `dynamic-security.json` (COFFEETRACE_MQTT_BROKER_AUTH="
            "dynsec) or the `passwords` and `acl` files (files), mounted as "
            "/mosquitto/config/auth/.")]) -> None:
        """Write the broker's identities from the device registry (dynamic security file, or
        password and ACL files)."""
        from coffeetrace.ingest.brokerconfig import write_broker_auth, write_dynsec_config

        from coffeetrace import db
        from coffeetrace.errors import ConfigError
        from coffeetrace.settings import get_settings

        settings = get_settings()
        if settings.mqtt_broker_auth == "none":
            raise ConfigError("COFFEETRACE_MQTT_BROKER_AUTH is none (a broker that takes anyone):"
                              " there is nothing to write; set it to dynsec or files",
                              setting="COFFEETRACE_MQTT_BROKER_AUTH")
        with db.connect(settings.effective_database_url(),
                        timeout_s=settings.db_connect_timeout_s) as conn:
            if settings.mqtt_broker_auth == "dynsec":
                dyn = write_dynsec_config(conn, settings, out)
            else:
                auth = write_broker_auth(conn, settings, out)
        if settings.mqtt_broker_auth == "dynsec":
            for warning in dyn.warnings:
                say(f"warning: {warning}")
            say(f"wrote {dyn.path} ({dyn.devices} devices, {dyn.disabled} of them disabled, + "
                f"{dyn.ingest_user} and {dyn.control_user}); (re)start Mosquitto to load it. "
                "Afterwards the API and CLI apply device changes to the running broker.")
            return
        for warning in auth.warnings:
            say(f"warning: {warning}")
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
        database_url: DatabaseUrl = "",
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

    @bench.command("ingest-flood")
    @friendly
    def bench_ingest_flood(
        phase_seconds: Annotated[float, typer.Option(
            "--phase-seconds", help="Length of each phase: a round is a baseline phase, "
            "then a flood phase.")] = 10.0,
        rounds: Annotated[int, typer.Option(
            "--rounds", help="Rounds; the latency figures pool each kind of phase over "
            "them (each round's p99 is reported too).")] = 3,
        good_devices: Annotated[int, typer.Option(
            "--good-devices", help="Well-behaved devices, each on its own connection.")] = 50,
        good_rate: Annotated[float, typer.Option(
            "--good-rate", help="Messages per second of each well-behaved device.")] = 2.0,
        limit: Annotated[float, typer.Option(
            "--limit", help="Per-device message limit of the bench's ingest "
            "(COFFEETRACE_INGEST_DEVICE_MSGS_PER_S).")] = 10.0,
        burst: Annotated[int, typer.Option(
            "--burst", help="Its burst (COFFEETRACE_INGEST_DEVICE_MSGS_BURST), small so that "
            "the flood is over its limit within the first second.")] = 20,
        factor: Annotated[float, typer.Option(
            "--factor", help="The flooding device sends this many times its limit.")] = 100.0,
        warmup_seconds: Annotated[float, typer.Option(
            "--warmup-seconds", help="First seconds of the good devices, in neither "
            "phase.")] = 2.0,
        database_url: DatabaseUrl = "",
    ) -> None:
        """One device floods beside 50 good ones: their latency with and without it (JSON)."""
        from coffeetrace.ingest.bench_flood import run_flood_bench
        from coffeetrace.ingest.service import tune_gc

        from coffeetrace.settings import get_settings

        setup_logging()
        tune_gc()  # as `coffeetrace ingest` does
        run_flood_bench(get_settings(), phase_seconds=phase_seconds, database_url=database_url,
                        say=say, rounds=rounds, good_devices=good_devices, good_rate=good_rate,
                        limit=limit, burst=burst, factor=factor, warmup_seconds=warmup_seconds)
