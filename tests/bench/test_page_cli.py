"""`coffeetrace bench page` with nothing configured, and without wrk: it starts the embedded
PostgreSQL as `bench trace` does, and a missing or failing load generator is a clear
message (exit 2), not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace.embedded import free_port, port_answers
from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace_bench import cli as bench_cli
from coffeetrace_bench import page

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


def test_without_any_load_generator_says_what_to_install_before_seeding(
    pg_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk
    for module in ("httpx2", "httpx"):
        monkeypatch.setitem(sys.modules, module, None)  # `import` raises ImportError
    seeded: list[int] = []
    monkeypatch.setattr(page, "seed", lambda *args, **kwargs: seeded.append(1))
    env = {"COFFEETRACE_DATABASE_URL": pg_server.admin_url}
    result = CliRunner().invoke(bench_cli.bench_app, SMALL, env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "install wrk" in result.output and "httpx2" in result.output
    assert seeded == []


def test_the_fallback_load_generator_counts_refused_connections() -> None:
    pytest.importorskip("httpx2")
    closed = f"http://127.0.0.1:{free_port()}/healthz"
    result = page.measure(closed, 2, 0.3, page.HTTPX)
    assert result["socket_errors"] > 0
    assert result["rps"] == 0.0


def test_a_failing_wrk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrk = tmp_path / "wrk"
    wrk.write_text("#!/bin/sh\necho 'unable to connect to 127.0.0.1:1' >&2\nexit 1\n")
    wrk.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert page.pick_load_generator() == page.WRK
    with pytest.raises(ConfigError, match="wrk failed .*unable to connect"):
        page.measure("http://127.0.0.1:1/healthz", 1, 1, page.WRK)
