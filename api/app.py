"""`create_app()`: the FastAPI application. Its lifespan owns every long-lived resource."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coffeetrace import db
from coffeetrace.api import hardening, health, public, routes_chain, routes_lots, routes_registry
from coffeetrace.api.broker_reconciler import run_broker_reconciler
from coffeetrace.api.cache import Memo, PageCache
from coffeetrace.api.checkpointer import run_checkpointer
from coffeetrace.api.console.routes import install as install_console
from coffeetrace.api.ratelimit import ClientLimiter
from coffeetrace.api.routes_admin import router as admin_router
from coffeetrace.api.routes_dds import router as dds_router
from coffeetrace.api.routes_epcis import router as epcis_router
from coffeetrace.api.routes_external_lots import router as external_lots_router
from coffeetrace.api.routes_harvests import router as harvests_router
from coffeetrace.api.routes_organisations import router as organisations_router
from coffeetrace.api.routes_shipments import router as shipments_router
from coffeetrace.api.vocabulary import router as vocabulary_router
from coffeetrace.broker_control import BrokerControl
from coffeetrace.errors import CoffeetraceError, first_line
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.rules import TraceRules

UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's 400 detail


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = db.open_pool(settings, name="api")
        app.state.pool = pool
        tickers = []
        if settings.checkpoint_interval_s > 0:
            tickers.append(
                asyncio.create_task(
                    run_checkpointer(pool, app.state.keys, settings.checkpoint_interval_s)
                )
            )
        if settings.broker_reconcile_s > 0 and app.state.broker_control.live:
            tickers.append(
                asyncio.create_task(
                    run_broker_reconciler(
                        pool, app.state.broker_control, settings.broker_reconcile_s
                    )
                )
            )
        try:
            yield
        finally:
            for ticker in tickers:
                ticker.cancel()
            pool.close()

    app = FastAPI(
        title="coffeetrace",
        version="0.1.0",
        summary="Per-tree coffee traceability: registry, lots, traces, exports, provenance pages.",
        lifespan=lifespan,
    )

    app.state.settings = settings
    app.state.rules = TraceRules.from_settings(settings)  # the domain's rules, configured
    app.state.keys = KeyRing(settings.effective_keys_dir())
    app.state.page_cache = PageCache(
        settings.page_cache_entries, settings.page_cache_recheck_s, settings.page_cache_ttl_s
    )
    app.state.link_memo = Memo()
    app.state.public_limiter = ClientLimiter.from_settings(settings)
    app.state.broker_control = BrokerControl(settings)

    @app.exception_handler(CoffeetraceError)
    async def domain_error(request: Request, exc: CoffeetraceError) -> JSONResponse:
        retry = exc.details.get("retry_after_s") if exc.status_code == 429 else None
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(psycopg.DataError)
    async def refused_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # driver or server refused a value the schema let through (NUL byte, out of range)
        reason = first_line(exc)
        return JSONResponse(
            {"error": "invalid", "message": f"a value was refused: {reason}"}, status_code=422
        )

    @app.exception_handler(UnicodeEncodeError)
    async def not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # a lone UTF-16 surrogate ("\\ud800") that JSON allows reached the database driver
        # through a field no schema checks: the client's text, not the server, is at fault
        return JSONResponse(
            {
                "error": "invalid",
                "message": "a value was refused: text holds a lone UTF-16"
                " surrogate, which is not Unicode",
            },
            status_code=422,
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
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
            # FastAPI's 400 for a body it cannot decode (not UTF-8, say): the documented 422
            return JSONResponse(
                {
                    "error": "invalid",
                    "message": "body: not a JSON document (send UTF-8 JSON)",
                    "details": {"problems": [{"field": "body", "message": UNPARSABLE_BODY}]},
                },
                status_code=422,
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        if exc.status_code == 405:
            # every method of the path, not just those of the first route that matched it
            allow = request.app.state.method_table.allowed(request.url.path)
            headers = {**(headers or {}), "Allow": ", ".join(allow)}
        return JSONResponse(
            {"error": code, "message": message}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(psycopg_pool.PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        # the database is unreachable (restarting, say): retryable, not a server bug
        return JSONResponse(
            {
                "error": "unavailable",
                "message": "the database is not reachable at the moment; try again shortly",
                "details": {},
            },
            status_code=503,
            headers={"Retry-After": "5"},
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

    app.include_router(health.router)
    app.include_router(routes_registry.router)
    app.include_router(routes_lots.router)
    app.include_router(harvests_router)
    app.include_router(public.router)
    app.include_router(vocabulary_router)
    app.include_router(routes_chain.router)
    app.include_router(admin_router)
    app.include_router(dds_router)
    app.include_router(organisations_router)
    app.include_router(shipments_router)
    app.include_router(external_lots_router)
    app.include_router(epcis_router)
    install_console(app)  # /console: people's screens (docs/console.md)
    hardening.install(app, settings)
    return app
