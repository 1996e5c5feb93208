"""`coffeetrace up`: the whole stack in one process, for one machine.

Starts (or reuses) PostgreSQL and the MQTT broker, migrates, runs ingest in the
background and the API in the foreground; with `demo`, also seeds a demo cooperative
and runs the farm simulator. Ctrl-C (or SIGTERM) stops everything in reverse order.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import uvicorn

from coffeetrace import db
from coffeetrace.api.app import create_app
from coffeetrace.embedded import EmbeddedBroker, EmbeddedPostgres, port_is_free
from coffeetrace.errors import ConfigError
from coffeetrace.ingest.limits import for_replay
from coffeetrace.ingest.retention import LedgerPruner
from coffeetrace.ingest.service import IngestService
from coffeetrace.migrate import migrate
from coffeetrace.mqtt import check_broker, parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.simulators.demo import start_demo

log = logging.getLogger(__name__)


@contextmanager
def _stop_signals_end_quietly(stop: threading.Event) -> Iterator[None]:
    """Let SIGINT/SIGTERM end `server.run()` and then the stack's cleanup, with exit status 0.

    Uvicorn handles both signals while it runs, then re-raises them once it has shut down;
    with Python's default handlers that would kill the process (SIGTERM) or raise
    KeyboardInterrupt (SIGINT) before the embedded servers are stopped.
    """

    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def start_servers(settings: Settings, stack: ExitStack, say: Callable[[str], None]) -> Settings:
    """Start what is not configured; return settings that point at the servers in use."""
    overrides: dict[str, object] = {}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.embedded_database:
        pg = EmbeddedPostgres(settings.data_dir, settings.embedded_pg_port)
        pg.start()
        if pg.started_here:  # a server reused (that of a running `up`) is left running
            stack.callback(pg.stop)
        overrides["database_url"] = pg.url
        how = "embedded" if pg.started_here else "embedded, already running"
        say(f"PostgreSQL ({how}) on 127.0.0.1:{pg.port}, data in {pg.pgdata}")
    else:
        db.check_database(settings.database_url, settings.db_connect_timeout_s)
        say(f"PostgreSQL at {db.redact(settings.database_url)}")
    if settings.embedded_broker:
        broker = EmbeddedBroker(settings.data_dir, settings.embedded_mqtt_port)
        broker.start()
        if broker.started_here:
            stack.callback(broker.stop)
        overrides["mqtt_url"] = broker.url
        say(f"MQTT broker (embedded {broker.kind}) on 127.0.0.1:{broker.port}")
    else:
        check_broker(settings.mqtt_url)
        say(f"MQTT broker at {parse_broker_url(settings.mqtt_url).redacted()}")
    return settings.model_copy(update=overrides)


@contextmanager
def running_ingest(settings: Settings) -> Iterator[IngestService]:
    """Ingest consuming a time-accelerated replay in this process, while the block runs."""
    # the replay is far above any real device's rate: no per-device limits unless set
    service = IngestService(for_replay(settings))
    service.start()
    try:
        yield service
    finally:
        service.stop()


def run_migrations(settings: Settings) -> list[str]:
    url = settings.effective_database_url()
    with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn:
        return migrate(conn)


def up(settings: Settings, *, demo: bool, say: Callable[[str], None]) -> None:
    if not port_is_free(settings.api_host, settings.api_port):
        raise ConfigError(
            f"port {settings.api_port} on {settings.api_host} is in use by another program. "
            "Set COFFEETRACE_API_PORT to a free port.",
            setting="COFFEETRACE_API_PORT",
        )
    with ExitStack() as stack:
        settings = start_servers(settings, stack, say)
        applied = run_migrations(settings)
        say(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")

        # the demo replays a season in seconds: far above any real device's rate
        ingest = IngestService(for_replay(settings) if demo else settings)
        ingest.start()
        stack.callback(ingest.stop)
        say(f"ingest subscribed to {ingest.topic_filter}")

        stop = threading.Event()
        stack.callback(stop.set)
        LedgerPruner(settings, stop).start()
        announcements: list[str] = []
        if demo:
            info = start_demo(settings, stop, say)
            announcements.append(f"provenance page: {info.page_url}")
        base = f"http://{settings.api_host}:{settings.api_port}"
        announcements.append(f"health check: {base}/healthz  (ready: {base}/readyz)")
        announcements.append(f"API docs: {base}/docs")
        config = uvicorn.Config(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=settings.api_keep_alive_s,
            limit_concurrency=settings.api_limit_concurrency or None,
            backlog=settings.api_backlog,
            h11_max_incomplete_event_size=settings.api_max_header_bytes,
        )
        server = uvicorn.Server(config)

        def announce_when_serving() -> None:
            # The URLs are printed only once they answer, so whoever reads them can open them.
            while not server.started and not stop.is_set():
                stop.wait(0.05)
            if server.started:
                for line in announcements:
                    say(line)

        def watch_ingest() -> None:
            # ingest runs inside the stack: if it fails, the stack stops (exit 1) instead of
            # serving on while nothing is stored
            while not stop.wait(1.0):
                if not ingest.healthy:
                    say(f"ingest failed: {ingest.failure}; stopping")
                    failed.set()
                    server.should_exit = True
                    return

        failed = threading.Event()
        threading.Thread(target=announce_when_serving, name="announce", daemon=True).start()
        threading.Thread(target=watch_ingest, name="watch-ingest", daemon=True).start()
        with _stop_signals_end_quietly(stop):
            server.run()  # returns on Ctrl-C / SIGTERM
        say("stopping")
        if failed.is_set():
            raise SystemExit(1)
