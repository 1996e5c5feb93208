"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from coffeetrace.errors import ConfigError, first_line
from coffeetrace.mqtt import check_broker
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "health.sql")

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the broker are reachable",
    responses={503: {"description": "Not ready, with the reason"}},
)
def readyz(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    checks: dict[str, str] = {}
    reasons: list[str] = []
    try:
        with request.app.state.pool.connection(timeout=3) as conn:
            conn.execute(SQL["readiness_ping"])
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is reported
        checks["database"] = "unreachable"
        reasons.append(f"database: {first_line(exc)}")
    try:
        check_broker(settings.effective_mqtt_url(), timeout_s=3)
        checks["broker"] = "ok"
    except ConfigError as exc:
        checks["broker"] = "unreachable"
        reasons.append(f"broker: {exc.message}")
    status = 200 if not reasons else 503
    body: dict[str, object] = {"status": "ready" if not reasons else "not ready", "checks": checks}
    if reasons:
        body["reason"] = "; ".join(reasons)
    return JSONResponse(body, status_code=status)
