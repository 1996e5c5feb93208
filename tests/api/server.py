"""The app on a free port for tests that need real HTTP: served by uvicorn in a thread
(`serve`), or by the `coffeetrace api` command in a child process, as in production
(`api_command`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from coffeetrace.api.app import create_app
from coffeetrace.embedded import free_port
from coffeetrace.settings import Settings


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Yield the base URL of the running app; public_base_url points at it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"public_base_url": base}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def fetch(url: str, timeout: float = 30) -> bytes:
    """One GET with the standard library; the body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return response.read()


@contextmanager
def api_command(database_url: str) -> Iterator[str]:
    """Yield the base URL of `coffeetrace api` running in a child process on `database_url`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, COFFEETRACE_DATABASE_URL=database_url, COFFEETRACE_PUBLIC_BASE_URL=base)
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe that could fill
    command = [sys.executable, "-m", "coffeetrace.cli", "api", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(f"{base}/healthz", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"`coffeetrace api` did not start: {log.read()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
