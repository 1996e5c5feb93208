"""What every console screen shares: the session of the request, its language, rendering
(jinja2, autoescaped, no script), cookies, the console's CSP, and errors as HTML pages.

Routes use `ConsoleRoute`: a request without a live session is sent to the login page
(303), and an error the API or the domain raised becomes a page with the API's message in
the user's language and the API's status code.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel import dates
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from coffeetrace.api import i18n
from coffeetrace.api.console import messages, sessions
from coffeetrace.api.console.sessions import Session
from coffeetrace.api.deps import Conn
from coffeetrace.api.render import format_number
from coffeetrace.errors import CoffeetraceError, NotFound, ValidationFailed
from coffeetrace.settings import Settings

COOKIE = "ct_console"
LANG_COOKIE = "ct_console_lang"
PREFIX = "/console"
# Forms post to the console only; no script, no frames, nothing from another host.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class LoginRequired(Exception):
    """The request has no live session: the login page, then back to `next_path`."""


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE)
    return lang if lang in i18n.LANGS else i18n.DEFAULT_LANG


def client_addr(request: Request) -> str:
    return request.client.host if request.client else ""


def secure(request: Request) -> bool:
    """Cookies are Secure over HTTPS (uvicorn reads X-Forwarded-Proto from trusted
    proxies) or when COFFEETRACE_CONSOLE_COOKIE_SECURE says so."""
    return request.url.scheme == "https" or settings_of(request).console_cookie_secure


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )


def safe_next(value: str | None) -> str:
    """A path inside the console to go back to; the console's home for anything else
    (an absolute URL, `//host`, a backslash: never a redirect elsewhere)."""
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) <= 2000
        and value.isprintable()
    ):
        return value
    return PREFIX + "/"


def current_session(request: Request, conn: Conn) -> Session:
    session = sessions.load(conn, request.cookies.get(COOKIE), settings_of(request))
    if session is None:
        raise LoginRequired
    request.state.console_session = session
    return session


Viewer = Annotated[Session, Depends(current_session)]


# --- rendering ------------------------------------------------------------------------
def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(settings_of(request).console_time_zone)


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("coffeetrace.api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    zone = _zone(request)

    def kg(value: Any, digits: int = 1) -> str:
        return format_number(value, lang, digits)

    def when(value: Any) -> str:
        if not isinstance(value, datetime):
            return "" if value is None else str(value)
        return dates.format_datetime(
            value.astimezone(zone), "short", tzinfo=zone, locale=i18n.locale(lang)
        )

    def day(value: Any) -> str:
        if value is None:
            return ""
        return dates.format_date(value, "medium", locale=i18n.locale(lang))

    session = session or getattr(request.state, "console_session", None)
    html = (
        environment()
        .get_template(f"console/{template}")
        .render(
            lang=lang,
            other_lang="en" if lang == "vi" else "vi",
            t=messages.texts(lang),
            session=session,
            csrf=session.csrf_token if session else "",
            path=request.url.path,
            here=quote(_path_and_query(request), safe="/"),
            kg=kg,
            when=when,
            day=day,
            **context,
        )
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


def _path_and_query(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(request: Request, exc: CoffeetraceError) -> HTMLResponse:
    lang = lang_of(request)
    headers = {}
    retry = exc.details.get("retry_after_s") if exc.status_code == 429 else None
    response = page(
        request,
        "error.html",
        status_code=exc.status_code,
        error=messages.translate(exc, lang),
        code=messages.error_key(exc),
    )
    if retry is not None:
        headers["Retry-After"] = str(retry)
    response.headers.update(headers)
    return response


def validation_error(exc: RequestValidationError) -> ValidationFailed:
    """A form's or a path's invalid field, as the API words it ("field: message")."""
    problems = [
        {
            "field": ".".join(str(p) for p in err["loc"] if p not in ("body", "path", "query")),
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    return ValidationFailed(f"{first['field']}: {first['message']}", problems=problems)


class ConsoleRoute(APIRoute):
    """Console routes: login redirects and errors as pages (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = _path_and_query(request)
                if request.method != "GET":
                    target = PREFIX + "/"
                return redirect(f"{PREFIX}/login?next={quote(safe_next(target), safe='/')}")
            except CoffeetraceError as exc:
                return error_page(request, exc)
            except RequestValidationError as exc:
                if any(err["loc"][:1] == ("path",) for err in exc.errors()):
                    # an id that cannot be one of the cooperative's: as the API, not found
                    return error_page(request, NotFound("no such page in your cooperative"))
                return error_page(request, validation_error(exc))
            except StarletteHTTPException as exc:
                if exc.status_code == 404:
                    return error_page(request, NotFound("no such page in your cooperative"))
                raise

        return guarded
