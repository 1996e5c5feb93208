"""Console sessions kept in PostgreSQL: the cookie holds a random 256-bit token and only
its SHA-256 is stored (as for API keys). Each session has its own CSRF token, which every
form sends back (the synchronizer token pattern)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.api.auth import Caller, hash_token
from coffeetrace.api.console.users import User
from coffeetrace.errors import Forbidden
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "console_users.sql")
MAX_TOKEN = 200

Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Session:
    """A logged-in user as a request sees them."""

    session_id: UUID
    csrf_token: str
    user_id: UUID
    username: str
    display_name: str
    role: str
    cooperative_id: UUID
    cooperative_code: str
    cooperative_name: str

    @property
    def caller(self) -> Caller:
        """The user as the API's caller: the same role checks and tenancy. The user's id
        stands where an API key's would (what the API records as who did it)."""
        return Caller(
            key_id=self.user_id,
            cooperative_id=self.cooperative_id,
            cooperative_code=self.cooperative_code,
            role=self.role,
        )

    def check_csrf(self, sent: str | None) -> None:
        """Forbidden unless the form sent this session's CSRF token."""
        if not sent or not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise Forbidden(
                "the form was not sent from this session's page (CSRF token missing or"
                " wrong); reload the page and send it again",
                reason="csrf",
            )


def start(conn: Conn, user: User, client_addr: str, settings: Settings) -> str:
    """A new session of `user`; the token for the cookie (not stored)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        SQL["console_insert_session"],
        dict(
            user_id=user.id,
            token_hash=hash_token(token),
            csrf_token=secrets.token_urlsafe(32),
            client_addr=client_addr[:100],
            max_age_s=settings.console_session_max_age_s,
        ),
    )
    return token


def load(conn: Conn, token: str | None, settings: Settings) -> Session | None:
    """The live session of the cookie's token; None when there is none (expired, idle,
    revoked, its user disabled)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = conn.execute(
        SQL["console_session_by_token_hash"],
        {"token_hash": hash_token(token), "idle_s": settings.console_session_idle_s},
    ).fetchone()
    if row is None:
        return None
    conn.execute(SQL["console_touch_session"], {"id": row["session_id"]})
    return Session(
        session_id=row["session_id"],
        csrf_token=row["csrf_token"],
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        cooperative_id=row["cooperative_id"],
        cooperative_code=row["cooperative_code"],
        cooperative_name=row["cooperative_name"],
    )


def end(conn: Conn, session_id: UUID) -> None:
    conn.execute(SQL["console_revoke_session"], {"id": session_id})


def list_live(conn: Conn, cooperative_id: UUID, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        SQL["console_list_sessions"], {"cooperative_id": cooperative_id, "limit": limit}
    ).fetchall()


def revoke(conn: Conn, cooperative_id: UUID, session_id: UUID) -> bool:
    """End a session of the cooperative (an admin's act); False when it has none so."""
    row = conn.execute(
        SQL["console_revoke_coop_session"], {"id": session_id, "cooperative_id": cooperative_id}
    ).fetchone()
    return row is not None
