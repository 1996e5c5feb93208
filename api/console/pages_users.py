"""The Users screen (admins): create users, reset a password, disable and enable a user
(a disabled user's sessions end at once), see and end live sessions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request, Response

from coffeetrace.api.console import messages, sessions, users, web
from coffeetrace.api.console.sessions import Session
from coffeetrace.api.console.web import Viewer
from coffeetrace.api.deps import Conn
from coffeetrace.errors import CoffeetraceError, ValidationFailed

router = APIRouter(route_class=web.ConsoleRoute)
FormText = Annotated[str, Form(max_length=1024)]
SESSIONS_SHOWN = 200


def _page(
    request: Request,
    conn: Conn,
    session: Session,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    return web.page(
        request,
        "users.html",
        status_code=status_code,
        users=users.list_users(conn, session.cooperative_id),
        live=sessions.list_live(conn, session.cooperative_id, SESSIONS_SHOWN),
        roles=users.ROLES,
        error=error,
        notice=notice,
        min_password=web.settings_of(request).console_password_min_length,
    )


def _admin(session: Session, csrf: str | None = None, *, form: bool = True) -> None:
    if form:
        session.check_csrf(csrf)
    session.caller.require("admin")


def _done(request: Request, conn: Conn, session: Session, action: object) -> Response:
    """Run `action` (a function), then show the list again, with its refusal if any."""
    try:
        action()  # type: ignore[operator]
    except CoffeetraceError as exc:
        return _page(
            request,
            conn,
            session,
            error=messages.translate(exc, web.lang_of(request)),
            status_code=exc.status_code,
        )
    return web.redirect(f"{web.PREFIX}/users")


@router.get("/users")
def user_list(request: Request, conn: Conn, session: Viewer) -> Response:
    _admin(session, form=False)
    return _page(request, conn, session)


@router.post("/users")
def user_create(
    request: Request,
    conn: Conn,
    session: Viewer,
    csrf: FormText = "",
    username: FormText = "",
    display_name: FormText = "",
    role: FormText = "",
    password: FormText = "",
) -> Response:
    _admin(session, csrf)
    return _done(
        request,
        conn,
        session,
        lambda: users.create_user(
            conn,
            session.cooperative_id,
            username=username.strip().lower(),
            role=role,
            password=password,
            display_name=display_name,
            settings=web.settings_of(request),
        ),
    )


@router.post("/users/{user_id}/password")
def user_password(
    user_id: UUID,
    request: Request,
    conn: Conn,
    session: Viewer,
    csrf: FormText = "",
    password: FormText = "",
) -> Response:
    _admin(session, csrf)
    return _done(
        request,
        conn,
        session,
        lambda: users.reset_password(
            conn, session.cooperative_id, user_id, password, web.settings_of(request)
        ),
    )


@router.post("/users/{user_id}/disable")
def user_disable(
    user_id: UUID, request: Request, conn: Conn, session: Viewer, csrf: FormText = ""
) -> Response:
    _admin(session, csrf)

    def disable() -> None:
        if user_id == session.user_id:
            raise ValidationFailed(
                "you cannot disable your own account; ask another admin", reason="self"
            )
        users.set_disabled(conn, session.cooperative_id, user_id, True)

    return _done(request, conn, session, disable)


@router.post("/users/{user_id}/enable")
def user_enable(
    user_id: UUID, request: Request, conn: Conn, session: Viewer, csrf: FormText = ""
) -> Response:
    _admin(session, csrf)
    return _done(
        request,
        conn,
        session,
        lambda: users.set_disabled(conn, session.cooperative_id, user_id, False),
    )


@router.post("/sessions/{session_id}/revoke")
def session_revoke(
    session_id: UUID, request: Request, conn: Conn, session: Viewer, csrf: FormText = ""
) -> Response:
    _admin(session, csrf)

    def revoke() -> None:
        if not sessions.revoke(conn, session.cooperative_id, session_id):
            raise ValidationFailed("no such live session in your cooperative")

    return _done(request, conn, session, revoke)
