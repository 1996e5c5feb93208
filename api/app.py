"""`create_app()`: the FastAPI application. Its lifespan owns every long-lived resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from coffeetrace import db
from coffeetrace.errors import CoffeetraceError
from coffeetrace.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = db.open_pool(settings, name="api")
        app.state.settings = settings
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

    @app.exception_handler(CoffeetraceError)
    async def domain_error(request: Request, exc: CoffeetraceError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return JSONResponse(
            {"error": "invalid", "message": f"{first['field']}: {first['message']}",
             "details": {"problems": problems}},
            status_code=422,
        )

    from coffeetrace.api import health

    app.include_router(health.router)
    return app
