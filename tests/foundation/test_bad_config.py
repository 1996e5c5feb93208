"""Bad configuration ends with one clear message naming the setting, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from coffeetrace.embedded import free_port


def run_cli(
    args: list[str], env: dict[str, str], tmp_path: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COFFEETRACE_")}
    full_env.update({"COFFEETRACE_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "coffeetrace", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )


def assert_clear(result: subprocess.CompletedProcess[str], setting: str) -> None:
    assert result.returncode == 2, result.stderr
    assert setting in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/coffeetrace"
    env = {"COFFEETRACE_DATABASE_URL": url, "COFFEETRACE_DB_CONNECT_TIMEOUT_S": "2"}
    result = run_cli(["migrate"], env, tmp_path)
    assert_clear(result, "COFFEETRACE_DATABASE_URL")
    assert "cannot connect to PostgreSQL" in result.stderr


def test_wrong_broker_url(tmp_path: Path, db_url: str) -> None:
    env = {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
        "COFFEETRACE_API_PORT": str(free_port()),
    }
    assert_clear(run_cli(["up"], env, tmp_path), "COFFEETRACE_MQTT_URL")


def test_broker_url_that_is_not_a_url(tmp_path: Path, db_url: str) -> None:
    env = {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_MQTT_URL": "localhost:1883",
        "COFFEETRACE_API_PORT": str(free_port()),
    }
    result = run_cli(["up"], env, tmp_path)
    assert_clear(result, "COFFEETRACE_MQTT_URL")
    assert "not a broker URL" in result.stderr


def test_api_port_in_use(tmp_path: Path, db_url: str, mqtt_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "COFFEETRACE_DATABASE_URL": db_url,
            "COFFEETRACE_MQTT_URL": mqtt_url,
            "COFFEETRACE_API_PORT": str(port),
        }
        assert_clear(run_cli(["up"], env, tmp_path), "COFFEETRACE_API_PORT")


def test_embedded_database_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(["migrate"], {"COFFEETRACE_EMBEDDED_PG_PORT": str(port)}, tmp_path)
        assert_clear(result, "COFFEETRACE_EMBEDDED_PG_PORT")


@pytest.mark.parametrize("value", ["not-a-number", "-5x"])
def test_invalid_setting_value(tmp_path: Path, value: str) -> None:
    result = run_cli(["migrate"], {"COFFEETRACE_API_PORT": value}, tmp_path)
    assert_clear(result, "COFFEETRACE_API_PORT")
