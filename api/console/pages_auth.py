"""Logging in and out, and the language switch.

The login form has no session yet: its CSRF token is a random value in a cookie of its
own that the form sends back (double submit), so that another site cannot log a browser
in under its own account.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from coffeetrace.api.console import messages, sessions, users, web
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.api.i18n import LANGS
from coffeetrace.errors import CoffeetraceError, Forbidden

router = APIRouter(route_class=web.ConsoleRoute)
LOGIN_COOKIE = "ct_console_login"
LOGIN_FORM_S = 3600  # how long a login page's form stays good
FormText = Annotated[str, Form(max_length=1024)]


def _login_page(
    request: Request,
    next_path: str,
    *,
    error: str | None = None,
    status_code: int = 200,
    cooperative: str = "",
    username: str = "",
) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    if len(token) > 100:
        token = secrets.token_urlsafe(24)
    response = web.page(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next_path=next_path,
        error=error,
        cooperative=cooperative,
        username=username,
    )
    web.set_cookie(request, response, LOGIN_COOKIE, token, LOGIN_FORM_S)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, web.safe_next(next))


@router.post("/login")
def login(
    request: Request,
    conn: Conn,
    cooperative: FormText = "",
    username: FormText = "",
    password: FormText = "",
    csrf: FormText = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    lang = web.lang_of(request)
    next_path = web.safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    shown = {"cooperative": cooperative[:40], "username": username[:40]}
    if not expected or not csrf or not hmac.compare_digest(expected.encode(), csrf.encode()):
        error = Forbidden(
            "the login form was not sent from this site's page (CSRF token missing or"
            " wrong); reload the page and log in again",
            reason="csrf",
        )
        return _login_page(
            request, next_path, error=messages.translate(error, lang), status_code=403, **shown
        )
    try:
        user = users.authenticate(
            conn,
            cooperative_code=cooperative,
            username=username,
            password=password,
            client_addr=web.client_addr(request),
            settings=web.settings_of(request),
        )
    except CoffeetraceError as exc:
        # rendered, not raised: the failure just recorded is committed with the request
        response = _login_page(
            request,
            next_path,
            error=messages.translate(exc, lang),
            status_code=exc.status_code,
            **shown,
        )
        if exc.status_code == 429:
            response.headers["Retry-After"] = str(exc.details.get("retry_after_s", 60))
        return response
    token = sessions.start(conn, user, web.client_addr(request), web.settings_of(request))
    response = web.redirect(next_path)
    web.set_cookie(
        request, response, web.COOKIE, token, web.settings_of(request).console_session_max_age_s
    )
    response.delete_cookie(LOGIN_COOKIE, path=web.PREFIX)
    return response


@router.post("/logout")
def logout(request: Request, conn: Conn, session: Viewer, csrf: FormText = "") -> Response:
    session.check_csrf(csrf)
    sessions.end(conn, session.session_id)
    response = web.redirect(f"{web.PREFIX}/login")
    response.delete_cookie(web.COOKIE, path=web.PREFIX)
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
    """Only a preference (no state of the cooperative changes), so a plain link."""
    response = web.redirect(web.safe_next(next))
    if lang in LANGS:
        web.set_cookie(request, response, web.LANG_COOKIE, lang, 365 * 24 * 3600)
    return response
