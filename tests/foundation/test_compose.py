"""docker-compose.yml cannot be run here (no Docker engine), so it is read and checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_images(compose: dict) -> None:
    services = compose["services"]
    assert {"db", "broker", "api", "ingest", "simulator", "migrate"} <= set(services)
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg1[5-9]", services["db"]["image"])
    assert services["broker"]["image"] == "eclipse-mosquitto:2"
    for name in ("api", "ingest", "simulator", "migrate", "broker-config"):
        assert services[name]["build"] == "."
    assert services["simulator"]["profiles"] == ["demo"]


def test_long_running_services_have_health_checks(compose: dict) -> None:
    for name in ("db", "broker", "api", "ingest"):
        check = compose["services"][name].get("healthcheck")
        assert check and check["test"], f"{name} has no health check"


def test_dependencies_name_real_services(compose: dict) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert cond["condition"] in (
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            )
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no health check to wait for"


def test_every_mounted_file_exists(compose: dict) -> None:
    named = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"


def test_broker_config_is_the_shipped_one_with_burst_limits(compose: dict) -> None:
    mounts = compose["services"]["broker"]["volumes"]
    assert "./coffeetrace/broker/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounts
    conf = (ROOT / "coffeetrace/broker/mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1)
        for line in conf.splitlines()
        if line.strip() and not line.startswith("#") and " " in line
    )
    assert settings["persistence"] == "true"
    assert int(settings["max_inflight_messages"]) >= 1000
    assert int(settings["max_queued_messages"]) >= 1_000_000
    assert settings["allow_anonymous"] == "false"
    # identities from the dynamic security plugin, at its path in eclipse-mosquitto:2, its
    # file in the volume broker-config writes (and the broker saves changes back to)
    assert settings["plugin"] == "/usr/lib/mosquitto_dynamic_security.so"
    assert settings["plugin_opt_config_file"].startswith("/mosquitto/config/auth/")
    assert settings["retain_available"] == "false"
    assert int(settings["max_packet_size"]) <= 1024 * 1024
    broker = compose["services"]["broker"]
    assert "broker-auth:/mosquitto/config/auth" in broker["volumes"], (
        "the broker must be able to save its dynamic security file"
    )
    env = compose["x-app"]["environment"]
    assert env["COFFEETRACE_MQTT_BROKER_AUTH"] == "dynsec"
    assert "${" in env["COFFEETRACE_MQTT_CONTROL_PASSWORD"]


def test_no_secrets_in_the_file(compose: dict) -> None:
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|SIGNING_KEY", key):
                assert "${" in str(value), f"{name}.{key} holds a literal secret"
            if "://" in str(value):
                assert not re.search(r"://[^:/@]+:(?!\$\{)[^@]+@", str(value)), (
                    f"{name}.{key} has a literal password in a URL"
                )


def test_dockerfile_installs_every_package_folder() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("coffeetrace", "ingest", "api", "trace", "simulators", "migrations"):
        assert f"COPY {folder} {folder}" in dockerfile


def _dclint() -> str | None:
    return os.environ.get("COFFEETRACE_DCLINT") or shutil.which("dclint")


@pytest.mark.skipif(_dclint() is None, reason="dclint (npm) is not installed; .ci/run installs it")
def test_compose_file_passes_dclint() -> None:
    """An outside checker: dclint validates against the Compose Specification's schema and
    its own rules. Only the rules about key and service ordering are switched off (the file
    is ordered by dependency, database first)."""
    result = subprocess.run(
        [
            _dclint() or "dclint",
            str(COMPOSE),
            "--max-warnings",
            "0",
            "--disable-rule",
            "service-keys-order",
            "services-alphabetical-order",
            "top-level-properties-order",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
