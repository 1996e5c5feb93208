"""`coffeetrace up --demo` end to end, as a user runs it: a real process, real servers,
harvests arriving over MQTT from the simulator, a provenance page served, Ctrl-C to stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from coffeetrace.embedded import free_port

pytestmark = pytest.mark.slow


class UpProcess:
    def __init__(self, env: dict[str, str], cwd: Path, demo: bool = True) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COFFEETRACE_")}
        full_env.update(env)
        args = [sys.executable, "-m", "coffeetrace", "up"] + (["--demo"] if demo else [])
        self.proc = subprocess.Popen(
            args, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def interrupt(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("up did not stop on Ctrl-C:\n" + "\n".join(self.lines)) from None
        finally:
            self._reader.join(10)
            assert self.proc.stdout is not None
            self.proc.stdout.close()


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    yield {
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
        "COFFEETRACE_API_PORT": str(port),
        "COFFEETRACE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "COFFEETRACE_TOPIC_PREFIX": f"test-{uuid.uuid4().hex[:8]}/coffeetrace/v1",
        "COFFEETRACE_MQTT_CLIENT_ID": f"ct-up-{uuid.uuid4().hex[:8]}",
        "COFFEETRACE_INGEST_METRICS_PORT": "0",
    }


def check_demo_page(up: UpProcess) -> str:
    page_url = up.wait_for(r"provenance page: (\S+)", timeout=240).group(1)
    health_url = up.wait_for(r"health check: (\S+)", timeout=30).group(1)
    assert httpx.get(health_url, timeout=10).status_code == 200
    page = httpx.get(page_url, timeout=30, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:500]
    assert "text/html" in page.headers["content-type"]
    return page_url


def test_up_demo_with_configured_servers(
    db_url: str, mqtt_url: str, up_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**up_env, "COFFEETRACE_DATABASE_URL": db_url, "COFFEETRACE_MQTT_URL": mqtt_url}
    up = UpProcess(env, tmp_path)
    try:
        check_demo_page(up)
        import psycopg

        with psycopg.connect(db_url) as conn:
            harvests = conn.execute("select count(*) from harvest_events").fetchone()[0]
            lots = conn.execute("select count(*) from lots").fetchone()[0]
        assert harvests > 0 and lots > 0
    finally:
        code = up.interrupt()
    assert code == 0, "\n".join(up.lines)


def test_up_demo_embedded_twice_finds_its_data(up_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **up_env,
        "COFFEETRACE_EMBEDDED_PG_PORT": str(free_port()),
        "COFFEETRACE_EMBEDDED_MQTT_PORT": str(free_port()),
    }
    first = UpProcess(env, tmp_path)
    try:
        page_url = check_demo_page(first)
    finally:
        assert first.interrupt() == 0, "\n".join(first.lines)
    second = UpProcess(env, tmp_path, demo=False)
    try:
        second.wait_for(r"health check: (\S+)", timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(page_url, timeout=10)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert page.status_code == 200
        # a one-shot command beside the running stack uses its database and leaves it running
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COFFEETRACE_")}
        migrate = subprocess.run(
            [sys.executable, "-m", "coffeetrace", "migrate"],
            env={**full_env, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr
        assert "nothing pending" in migrate.stderr
        assert httpx.get(page_url, timeout=10).status_code == 200
    finally:
        assert second.interrupt() == 0, "\n".join(second.lines)
