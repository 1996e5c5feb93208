"""`coffeetrace up`: the whole stack in one process, for one machine.

Starts (or reuses) PostgreSQL, migrates, starts (or reuses) the MQTT broker, runs ingest
in the background and the API in the foreground; with `demo`, also seeds a demo
cooperative and runs the farm simulator. Ctrl-C (or SIGTERM) stops everything in reverse
order.

The embedded Mosquitto authenticates as production does (COFFEETRACE_MQTT_BROKER_AUTH=
dynsec, the file `coffeetrace broker-config` writes): ingest and the control user with
passwords kept in the data folder, each device with its own, publishing only to its own
topics; anonymous clients are refused.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import uvicorn

from coffeetrace import db
from coffeetrace.api.app import create_app
from coffeetrace.api.serving import GuardedHTTPProtocol
from coffeetrace.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    broker_users_path,
    embedded_broker_users,
    find_dynsec_plugin,
    port_is_free,
)
from coffeetrace.errors import ConfigError
from coffeetrace.ingest.brokerconfig import DYNSEC_FILE, write_dynsec_config
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


def start_servers(
    settings: Settings,
    stack: ExitStack,
    say: Callable[[str], None],
    *,
    need_broker: bool = True,
) -> Settings:
    """Start what is not configured and migrate the database; return settings that point
    at the servers in use (the embedded broker with its ingest and control users).

    `need_broker` False (a command that publishes nothing): the embedded broker is not
    started, though one already running is used, so that what is registered reaches it.
    """
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
    settings = settings.model_copy(update=overrides)
    # before the broker: the embedded one starts with the registry's devices
    applied = run_migrations(settings)
    say(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    if not settings.embedded_broker:
        check_broker(settings.mqtt_url)
        say(f"MQTT broker at {parse_broker_url(settings.mqtt_url).redacted()}")
        return settings
    if not need_broker and port_is_free("127.0.0.1", settings.embedded_mqtt_port):
        # nothing to tell it: when it starts, it reads the registry's devices
        return settings.model_copy(update={"mqtt_broker_auth": "files"})
    return start_embedded_broker(settings, stack, say)


def start_embedded_broker(
    settings: Settings, stack: ExitStack, say: Callable[[str], None]
) -> Settings:
    """The embedded broker, authenticating as production does when it is Mosquitto with
    its dynamic security plugin (anonymous otherwise, with a warning); returns settings
    with its URL (as the ingest user) and its auth mode."""
    port = settings.embedded_mqtt_port
    if shutil.which("mosquitto") is None or find_dynsec_plugin() is None:
        broker = EmbeddedBroker(settings.data_dir, port)
        broker.start()
        if broker.started_here:
            stack.callback(broker.stop)
        say(f"MQTT broker (embedded {broker.kind}) on 127.0.0.1:{broker.port}")
        say(
            "warning: this broker takes any client, without password or ACL: install "
            "Mosquitto 2 with its dynamic security plugin for one that authenticates devices"
        )
        return settings.model_copy(update={"mqtt_url": broker.url, "mqtt_broker_auth": "none"})
    users = embedded_broker_users(settings)
    ingest, control = users["ingest"], users["control"]
    auth_dir = settings.data_dir / "mosquitto" / "auth"
    broker = EmbeddedBroker(
        settings.data_dir,
        port,
        dynsec_file=auth_dir / DYNSEC_FILE,
        username=ingest.username,
        password=ingest.password,
    )
    secured = settings.model_copy(
        update={
            "mqtt_url": broker.user_url,
            "mqtt_ingest_username": ingest.username,
            "mqtt_ingest_password": ingest.password,
            "mqtt_control_username": control.username,
            "mqtt_control_password": control.password,
            "mqtt_broker_auth": "dynsec",
        }
    )
    if port_is_free("127.0.0.1", port):
        # for the broker about to start; a running one (reused below) keeps its own state
        # and saves it over the file, so the file is left to it
        url = secured.effective_database_url()
        with db.connect(url, timeout_s=settings.db_connect_timeout_s) as conn:
            auth = write_dynsec_config(conn, secured, auth_dir)
        for warning in auth.warnings:
            say(f"warning: {warning}")
    broker.start()
    if broker.started_here:
        stack.callback(broker.stop)
    say(f"MQTT broker (embedded {broker.kind}) on 127.0.0.1:{broker.port}")
    say(
        f"MQTT clients log in (no anonymous ones): ingest as {ingest.username}, each device "
        "as its id (user name and client id) and its password, and publishes to its own "
        f"topics only; the passwords of {ingest.username} and {control.username} are in "
        f"{broker_users_path(settings)}"
    )
    return secured


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
            http=GuardedHTTPProtocol,
        )
        GuardedHTTPProtocol.settings = settings  # this process's settings, not the env's
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
