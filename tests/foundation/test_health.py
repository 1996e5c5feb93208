"""/healthz answers while the process lives; /readyz says 503 and why when a dependency is down."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from coffeetrace import db
from coffeetrace.api.app import create_app
from coffeetrace.embedded import EmbeddedPostgres, free_port
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings


def test_ready_when_database_and_broker_answer(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_not_ready_when_broker_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}"})
    with TestClient(create_app(broken)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["checks"]["broker"] == "unreachable"
        assert "COFFEETRACE_MQTT_URL" in body["reason"]
        assert client.get("/healthz").status_code == 200


def test_not_ready_when_database_goes_down(settings: Settings, tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        with db.connect(pg.url) as conn:
            migrate(conn)
        own = settings.model_copy(update={"database_url": pg.url})
        with TestClient(create_app(own)) as client:
            assert client.get("/readyz").status_code == 200
            pg.stop("immediate")
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unreachable"
            assert ready.json()["reason"].startswith("database:")
            assert client.get("/healthz").status_code == 200
    finally:
        pg.stop("immediate")
