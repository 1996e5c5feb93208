"""Commands of this package for the `coffeetrace` CLI: ingest, broker-config."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from coffeetrace import db
from coffeetrace.cli.apps import app
from coffeetrace.console import friendly, say, setup_logging
from coffeetrace.errors import ConfigError
from coffeetrace.ingest.brokerconfig import write_broker_auth, write_dynsec_config
from coffeetrace.ingest.retention import LedgerPruner
from coffeetrace.ingest.service import IngestService, tune_gc
from coffeetrace.settings import get_settings


@app.command()
@friendly
def ingest(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False,
) -> None:
    """Consume device messages from the broker into the database until SIGTERM/Ctrl-C."""

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
    say(
        f"ingest: {service.topic_filter} -> {db.redact(settings.effective_database_url())}"
        + (f"; metrics on :{port}/metrics" if port else "")
    )
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
        say(
            f"ingest stopped with {service.unacknowledged} messages not committed (the "
            "database did not answer in time); the broker redelivers them"
        )
        raise SystemExit(1)
    say("ingest stopped: received messages committed and acknowledged")


@app.command("broker-config")
@friendly
def broker_config(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for `dynamic-security.json` (COFFEETRACE_MQTT_BROKER_AUTH="
            "dynsec) or the `passwords` and `acl` files (files), mounted as "
            "/mosquitto/config/auth/.",
        ),
    ],
) -> None:
    """Write the broker's identities from the device registry (dynamic security file, or
    password and ACL files)."""

    settings = get_settings()
    if settings.mqtt_broker_auth == "none":
        raise ConfigError(
            "COFFEETRACE_MQTT_BROKER_AUTH is none (a broker that takes anyone):"
            " there is nothing to write; set it to dynsec or files",
            setting="COFFEETRACE_MQTT_BROKER_AUTH",
        )
    with db.connect(
        settings.effective_database_url(), timeout_s=settings.db_connect_timeout_s
    ) as conn:
        if settings.mqtt_broker_auth == "dynsec":
            dyn = write_dynsec_config(conn, settings, out)
        else:
            auth = write_broker_auth(conn, settings, out)
    if settings.mqtt_broker_auth == "dynsec":
        for warning in dyn.warnings:
            say(f"warning: {warning}")
        say(
            f"wrote {dyn.path} ({dyn.devices} devices, {dyn.disabled} of them disabled, + "
            f"{dyn.ingest_user} and {dyn.control_user}); (re)start Mosquitto to load it. "
            "Afterwards the API and CLI apply device changes to the running broker."
        )
        return
    for warning in auth.warnings:
        say(f"warning: {warning}")
    say(
        f"wrote {auth.passwords} ({auth.devices} devices + {auth.ingest_user}) and {auth.acl}; "
        "reload Mosquitto (SIGHUP) to apply"
    )
