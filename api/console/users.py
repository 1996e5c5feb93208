"""Console users: accounts per cooperative with the API's roles, argon2id password hashes
(argon2-cffi, RFC 9106's parameters), logins throttled per account and per client address.

A login answers the same for an unknown user, a disabled one and a wrong password, and
spends the same argon2 work on each, so the form does not tell which names exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from coffeetrace.api.auth import ROLES
from coffeetrace.errors import CoffeetraceError, Conflict, NotFound, Unauthorized, ValidationFailed
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "console_users.sql")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
COOP_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
MAX_PASSWORD = 1024  # characters; argon2 takes any length, the form need not
HASHER = PasswordHasher()
# verified against when there is no user, so that a miss costs what a hit costs
_DUMMY_HASH = HASHER.hash("coffeetrace console: no such user")

Conn = psycopg.Connection[dict[str, Any]]


class TooManyLogins(CoffeetraceError):
    """Logins of this account or from this address are refused for a while."""

    status_code = 429
    code = "too_many_logins"


@dataclass(frozen=True)
class User:
    id: UUID
    cooperative_id: UUID
    cooperative_code: str
    username: str
    display_name: str
    role: str


def check_password(password: str, settings: Settings) -> str:
    """The password when it is acceptable; ValidationFailed naming what is wrong."""
    if len(password) < settings.console_password_min_length:
        raise ValidationFailed(
            f"the password needs at least {settings.console_password_min_length} characters",
            field="password",
            min_length=settings.console_password_min_length,
        )
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(
            f"the password may have at most {MAX_PASSWORD} characters",
            field="password",
            max_length=MAX_PASSWORD,
        )
    if "\x00" in password or not _encodable(password):
        raise ValidationFailed(
            "the password holds a character that cannot be stored", field="password"
        )
    return password


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise ValidationFailed(
            "the user name is 2 to 40 of a-z, 0-9, '.', '_' and '-', starting with a letter"
            " or digit",
            field="username",
        )
    return username


def create_user(
    conn: Conn,
    cooperative_id: UUID,
    *,
    username: str,
    role: str,
    password: str,
    settings: Settings,
    display_name: str = "",
) -> dict[str, Any]:
    """A new user of the cooperative; Conflict (409) when the name is taken."""
    check_username(username)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role", role=role)
    if len(display_name) > 200 or "\x00" in display_name or not _encodable(display_name):
        raise ValidationFailed(
            "the display name is at most 200 characters of text", field="display_name"
        )
    check_password(password, settings)
    try:
        with conn.transaction():  # a savepoint: a taken name leaves the caller's transaction usable
            row = conn.execute(
                SQL["console_insert_user"],
                dict(
                    cooperative_id=cooperative_id,
                    username=username,
                    display_name=display_name.strip(),
                    role=role,
                    password_hash=HASHER.hash(password),
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise Conflict(
            f"the cooperative already has a user named {username!r}", field="username"
        ) from None
    assert row is not None  # insert ... returning
    return row


def account_key(cooperative_code: str, username: str) -> str:
    """What failed logins are counted by: the account as typed, lower case, bounded."""
    return f"{cooperative_code.strip().lower()[:60]}/{username.strip().lower()[:60]}"


def authenticate(
    conn: Conn,
    *,
    cooperative_code: str,
    username: str,
    password: str,
    client_addr: str,
    settings: Settings,
) -> User:
    """The user whose password this is; Unauthorized otherwise (recorded as a failure),
    TooManyLogins while the account or the address has too many recent failures."""
    account = account_key(cooperative_code, username)
    window = settings.console_login_window_s
    counts = conn.execute(
        SQL["console_login_failures"],
        {"account": account, "client_addr": client_addr, "window_s": window},
    ).fetchone()
    assert counts is not None  # two aggregates: always one row
    if (
        counts["of_account"] >= settings.console_login_max_failures_per_account
        or counts["of_address"] >= settings.console_login_max_failures_per_address
    ):
        raise TooManyLogins(
            f"too many failed logins; try again in {window // 60 or 1} minutes",
            retry_after_s=window,
            minutes=window // 60 or 1,
        )
    row = None
    code, name = cooperative_code.strip().lower(), username.strip().lower()
    if COOP_CODE.fullmatch(code) and USERNAME.fullmatch(name) and _encodable(password):
        row = conn.execute(
            SQL["console_user_for_login"], {"cooperative_code": code, "username": name}
        ).fetchone()
    good = _verify(row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not good or row["disabled_at"] is not None:
        conn.execute(
            SQL["console_record_login_failure"],
            {"account": account, "client_addr": client_addr, "window_s": window},
        )
        raise Unauthorized("the cooperative, user name or password is wrong")
    conn.execute(SQL["console_clear_login_failures"], {"account": account})
    if HASHER.check_needs_rehash(row["password_hash"]):
        conn.execute(
            SQL["console_set_password_hash"],
            {
                "id": row["id"],
                "password_hash": HASHER.hash(password),
                "old_hash": row["password_hash"],
            },
        )
    return User(
        id=row["id"],
        cooperative_id=row["cooperative_id"],
        cooperative_code=row["cooperative_code"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
    )


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD or not _encodable(password):
        password = ""
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def list_users(conn: Conn, cooperative_id: UUID) -> list[dict[str, Any]]:
    return conn.execute(SQL["console_list_users"], {"cooperative_id": cooperative_id}).fetchall()


def get_user(conn: Conn, cooperative_id: UUID, user_id: UUID) -> dict[str, Any]:
    """A user of the cooperative; NotFound (404) for another cooperative's."""
    row = conn.execute(
        SQL["console_get_user"], {"id": user_id, "cooperative_id": cooperative_id}
    ).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} does not exist in your cooperative")
    return row


def reset_password(
    conn: Conn, cooperative_id: UUID, user_id: UUID, password: str, settings: Settings
) -> dict[str, Any]:
    """Set a new password; the user's sessions end (they log in with the new one)."""
    check_password(password, settings)
    row = conn.execute(
        SQL["console_reset_password"],
        {"id": user_id, "cooperative_id": cooperative_id, "password_hash": HASHER.hash(password)},
    ).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} does not exist in your cooperative")
    conn.execute(SQL["console_revoke_user_sessions"], {"user_id": user_id})
    return row


def set_disabled(conn: Conn, cooperative_id: UUID, user_id: UUID, disabled: bool) -> dict[str, Any]:
    """Disable (every session of the user ends) or enable a user."""
    row = conn.execute(
        SQL["console_set_disabled"],
        {"id": user_id, "cooperative_id": cooperative_id, "disabled": disabled},
    ).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} does not exist in your cooperative")
    if disabled:
        conn.execute(SQL["console_revoke_user_sessions"], {"user_id": user_id})
    return row
