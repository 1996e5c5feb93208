"""HTTP hardening as pure ASGI middleware, installed by `install(app, settings)`.

Outermost first: security headers on every response (the 413s and 405s included), the
request-body limit (before routing, so before any key is checked or body read), `OPTIONS`
answered with the path's `Allow`, ETag handling for compressed responses, gzip.
"""

from __future__ import annotations

import contextlib
import json
import re

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coffeetrace.settings import Settings

# Public pages and JSON: no script at all, the pages' one <style> block and style
# attributes, the favicon as a data: URI, no framing, no form posting anywhere.
STRICT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Swagger UI (/docs) and ReDoc (/redoc) as FastAPI serves them: scripts and styles from
# cdn.jsdelivr.net, one inline script, fonts from Google (ReDoc), workers from blob:.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
# already compressed, or not worth it
NOT_COMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/pdf")


class MethodTable:
    """The methods of every path: from the OpenAPI document (every route is in it) and the
    app's own plain routes (/docs, /openapi.json); built on first use. A path that is
    itself a template without parameters (`/v1/plots/import`) takes only the methods of
    such literal templates: the parameter of `/v1/plots/{plot_id}` is typed by its route
    converter (`{plot_id:uuid}`), so that route does not claim it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], bool, frozenset[str]]] | None = None

    def _build(self) -> list[tuple[re.Pattern[str], bool, frozenset[str]]]:
        table = []
        for template, operations in self.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
            methods = {m.upper() for m in operations if m.upper() in HTTP_METHODS}
            table.append((re.compile(pattern), "{" not in template, frozenset(methods)))
        for route in self.app.router.routes:
            if isinstance(route, Route) and route.methods:
                table.append((route.path_regex, "{" not in route.path, frozenset(route.methods)))
        return table

    def allowed(self, path: str) -> list[str]:
        """Every method the path answers (HEAD with GET), plus OPTIONS; empty when no
        route has the path."""
        if self._table is None:
            self._table = self._build()
        matches = [(literal, of) for pattern, literal, of in self._table if pattern.fullmatch(path)]
        if any(literal for literal, _ in matches):
            matches = [(literal, of) for literal, of in matches if literal]
        methods: set[str] = set()
        for _, of_path in matches:
            methods |= of_path
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods | {"OPTIONS"}) if methods else []


def _error_body(error: str, message: str, details: dict[str, object]) -> bytes:
    return json.dumps({"error": error, "message": message, "details": details}).encode()


class SecurityHeaders:
    """X-Content-Type-Options, Referrer-Policy, X-Frame-Options, Permissions-Policy,
    Content-Security-Policy (relaxed for the docs pages) and, when configured, HSTS."""

    def __init__(self, app: ASGIApp, *, hsts_seconds: int, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.common = [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Permissions-Policy", PERMISSIONS_POLICY),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ]
        if hsts_seconds > 0:
            self.common.append(("Strict-Transport-Security", f"max-age={hsts_seconds}"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in self.docs_paths else STRICT_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.common:
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    """Raised from `receive` when a body grows past its limit."""


class BodyLimit:
    """413 in the project's error format for bodies above the limit: at once from the
    Content-Length header (nothing is read), or as soon as a chunked body grows past it
    (nothing more is read; whatever the app began answering is dropped). The connection
    is closed after the 413, so the rest of the body is never read."""

    def __init__(self, app: ASGIApp, *, default: int, per_route: dict[tuple[str, str], int]):
        self.app = app
        self.default = default
        self.per_route = per_route

    async def _refuse(self, send: Send, limit: int) -> None:
        body = _error_body(
            "too_large",
            f"the request body is larger than {limit} bytes",
            {"max_bytes": limit},
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_route.get((scope["method"], scope["path"].rstrip("/")), self.default)
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await self._refuse(send, limit)
            return

        seen = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a body it could not read (FastAPI: a 400)
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if too_large and not started:
            await self._refuse(send, limit)


class Options:
    """`OPTIONS` on a known path: 204 with `Allow` listing every method of the path."""

    def __init__(self, app: ASGIApp, *, methods: MethodTable) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            methods = self.methods.allowed(scope["path"])
            if methods:
                allow = ", ".join(methods).encode()
                await send(
                    {"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]}
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


class Head:
    """`HEAD` on a path that answers GET: the GET response's status and headers (its
    Content-Length and ETag included), without the body (RFC 9110 9.3.2). FastAPI's
    routes answer only the methods they declare, so HEAD was a 405 everywhere."""

    def __init__(self, app: ASGIApp, *, methods: MethodTable) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "HEAD"
            and "GET" in self.methods.allowed(scope["path"])
        ):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class CodingETags:
    """A gzipped response's ETag becomes weak (W/"..."), since the bytes differ from the
    identity response's; and a weak tag sent back in If-None-Match is compared weakly
    (RFC 9110 13.1.2), so both codings get their 304."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        gzip_accepted = "gzip" in request_headers.get("accept-encoding", "")
        if "if-none-match" in request_headers:
            raw = [
                (k, v.replace(b"W/", b"") if k == b"if-none-match" else v)
                for k, v in scope["headers"]
            ]
            scope = {**scope, "headers": raw}

        async def send_weak(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                etag = headers.get("etag")
                coded = headers.get("content-encoding") == "gzip"
                if (
                    etag
                    and not etag.startswith("W/")
                    and (coded or (message["status"] == 304 and gzip_accepted))
                ):
                    headers["etag"] = "W/" + etag
                    if message["status"] == 304:
                        headers.add_vary_header("Accept-Encoding")
            await send(message)

        await self.app(scope, receive, send_weak)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware; the last added runs first."""
    if settings.api_gzip_min_bytes > 0:
        app.add_middleware(
            GZipMiddleware,
            minimum_size=settings.api_gzip_min_bytes,
            compresslevel=6,
            exclude_content_types=NOT_COMPRESSED,
        )
        app.add_middleware(CodingETags)
    app.state.method_table = MethodTable(app)
    app.add_middleware(Head, methods=app.state.method_table)
    app.add_middleware(Options, methods=app.state.method_table)
    app.add_middleware(
        BodyLimit,
        default=settings.api_max_body_bytes,
        per_route={
            ("POST", "/v1/lots"): settings.api_max_lot_body_bytes,
            ("POST", "/epcis/capture"): settings.epcis_capture_max_bytes,
        },
    )
    docs = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.add_middleware(
        SecurityHeaders,
        hsts_seconds=settings.api_hsts_seconds,
        docs_paths=frozenset(p for p in docs if p),
    )
