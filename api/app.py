"""`create_app()`: the FastAPI application. Its lifespan owns every long-lived resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coffeetrace import db
from coffeetrace.api.cache import Memo, PageCache
from coffeetrace.broker_control import BrokerControl
from coffeetrace.errors import CoffeetraceError
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace.rules import TraceRules


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = db.open_pool(settings, name="api")
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="coffeetrace",
        version="0.1.0",
        summary="Per-tree coffee traceability: registry, lots, traces, exports, provenance pages.",
        lifespan=lifespan,
    )

    app.state.settings = settings
    app.state.rules = TraceRules.from_settings(settings)  # the domain's rules, configured
    app.state.page_cache = PageCache(
        settings.page_cache_entries, settings.page_cache_recheck_s, settings.page_cache_ttl_s
    )
    app.state.link_memo = Memo()
    app.state.broker_control = BrokerControl(settings)

    @app.exception_handler(CoffeetraceError)
    async def domain_error(request: Request, exc: CoffeetraceError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(psycopg.DataError)
    async def refused_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # driver or server refused a value the schema let through (NUL byte, out of range)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONResponse(
            {"error": "invalid", "message": f"a value was refused: {reason}"}, status_code=422
        )

    @app.exception_handler(psycopg.IntegrityError)
    async def integrity(request: Request, exc: psycopg.IntegrityError) -> JSONResponse:
        constraint = getattr(exc.diag, "constraint_name", None) or "a constraint"
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return JSONResponse(
                {
                    "error": "conflict",
                    "message": f"already exists ({constraint})",
                    "details": {"constraint": constraint},
                },
                status_code=409,
            )
        return JSONResponse(
            {
                "error": "invalid",
                "message": f"refused by {constraint}",
                "details": {"constraint": constraint},
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own 404/405 in the project's error format
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        return JSONResponse(
            {"error": code, "message": message},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return JSONResponse(
            {
                "error": "invalid",
                "message": f"{first['field']}: {first['message']}",
                "details": {"problems": problems},
            },
            status_code=422,
        )

    from coffeetrace.api import health, public, routes_lots, routes_registry

    app.include_router(health.router)
    app.include_router(routes_registry.router)
    app.include_router(routes_lots.router)
    app.include_router(public.router)
    return app
