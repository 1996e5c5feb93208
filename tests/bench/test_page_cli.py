"""`coffeetrace bench page` with nothing configured, and without wrk: it starts the embedded
PostgreSQL as `bench trace` does; without wrk its own load generator runs, counting refused
connections and timeouts rather than dying; a failing wrk is a clear message."""

from __future__ import annotations

import http.server
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace.embedded import free_port, port_answers
from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace_bench import cli as bench_cli
from coffeetrace_bench import loadgen, page

SMALL = ["page", "--trees", "50", "--lot-trees", "10", "--duration", "0.2", "--connections", "1"]


def test_starts_the_embedded_server_when_no_database_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports: list[str] = []

    def bench_on(settings: Settings, **_: Any) -> None:
        with psycopg.connect(settings.effective_database_url(), connect_timeout=5) as conn:
            row = conn.execute("select current_setting('port')").fetchone()
            assert row is not None
            ports.append(row[0])

    monkeypatch.setattr(bench_cli, "run_page_bench", bench_on)
    port = free_port()
    env = {
        "COFFEETRACE_DATABASE_URL": "",
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
        "COFFEETRACE_EMBEDDED_PG_PORT": str(port),
    }
    result = CliRunner().invoke(bench_cli.bench_app, SMALL, env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert ports == [str(port)]
    assert not port_answers("127.0.0.1", port), "the server started for the bench is stopped"


def test_without_wrk_the_built_in_load_generator_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk
    assert page.pick_load_generator() == page.BUILTIN
    with pytest.raises(ConfigError, match="wrk is not on PATH"):
        page.pick_load_generator("wrk")
    with pytest.raises(ConfigError, match="--loadgen must be one of"):
        page.pick_load_generator("ab")


def test_the_built_in_load_generator_counts_refused_connections() -> None:
    closed = f"http://127.0.0.1:{free_port()}/healthz"
    result = page.measure(closed, "/healthz", 2, 0.3, page.BUILTIN)
    assert result["socket_errors"] > 0
    assert result["rps"] == 0.0


def test_slow_answers_are_timeouts_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers: every request times out, none raises."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        result = loadgen.run(
            "127.0.0.1",
            port,
            ["/slow"],
            connections=2,
            duration_s=0.3,
            headers={"Accept": "text/html"},
            timeout_s=0.2,
        )
    finally:
        listener.close()
    assert result["timeouts"] >= 2
    assert result["rps"] == 0.0


def test_the_built_in_load_generator_keeps_connections_alive_and_reads_answers() -> None:
    """Against a real server: many answers over few connections, statuses counted."""
    accepted: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            accepted.append(1)
            super().setup()

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body = b"x" * 1000
            self.send_response(404 if self.path == "/missing" else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = loadgen.run(
            "127.0.0.1",
            server.server_address[1],
            ["/a", "/missing"],
            connections=2,
            duration_s=0.5,
            headers={},
        )
    finally:
        server.shutdown()
        server.server_close()
    answered = result["rps"] * 0.5
    assert answered > 10
    assert len(accepted) == 2, "two keep-alive connections, reused"
    assert 0 < result["bad"] < answered  # the 404s, counted
    assert result["socket_errors"] == 0 and result["timeouts"] == 0


def test_zipf_paths_favour_the_first_lots() -> None:
    paths = page.zipf_paths([f"L{i}" for i in range(1000)], 1.1, 20_000)
    counts = Counter(paths)
    assert len(paths) == 20_000
    assert counts["/l/L0"] > counts["/l/L9"] > counts["/l/L99"]
    assert len(counts) > 300  # the tail is scanned too


def test_a_failing_wrk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrk = tmp_path / "wrk"
    wrk.write_text("#!/bin/sh\necho 'unable to connect to 127.0.0.1:1' >&2\nexit 1\n")
    wrk.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert page.pick_load_generator() == page.WRK
    with pytest.raises(ConfigError, match="wrk failed .*unable to connect"):
        page.measure("http://127.0.0.1:1", "/healthz", 1, 1, page.WRK)
