"""`coffeetrace ingest` as a separate process, for the kill -9 and shared-subscription tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from coffeetrace.settings import Settings


def coffeetrace_bin() -> str:
    local = Path(sys.executable).with_name("coffeetrace")
    return str(local) if local.exists() else (shutil.which("coffeetrace") or "coffeetrace")


class IngestProcess:
    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = {
            **os.environ,
            "COFFEETRACE_DATABASE_URL": settings.effective_database_url(),
            "COFFEETRACE_MQTT_URL": settings.effective_mqtt_url(),
            "COFFEETRACE_TOPIC_PREFIX": settings.topic_prefix,
            "COFFEETRACE_MQTT_CLIENT_ID": settings.mqtt_client_id,
            "COFFEETRACE_INGEST_METRICS_PORT": "0",
            "COFFEETRACE_INGEST_DEVICE_MSGS_PER_S": str(settings.ingest_device_msgs_per_s),
            "COFFEETRACE_INGEST_DEVICE_SETS_PER_S": str(settings.ingest_device_sets_per_s),
            "COFFEETRACE_DATA_DIR": str(log_path.parent / "data"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115  # closed in wait/kill
        self.proc = subprocess.Popen(
            [coffeetrace_bin(), "ingest"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                "ingest_started"
                in self.log_path.read_text(errors="replace").split("--- restart ---")[-1]
            ):
                return
            if self.proc.poll() is not None:
                self._log.close()  # else its ResourceWarning fails whichever test runs next
                raise AssertionError(f"ingest exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()
        raise AssertionError(f"ingest did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.write(b"\n--- restart ---\n")
        self._log.close()

    def close_log(self) -> None:
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code
