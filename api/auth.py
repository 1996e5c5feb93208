"""API keys: issuing, hashing at rest, and resolving a request's caller and role.

A key is `ct_<prefix>_<secret>` with 256 random bits; only its SHA-256 is stored, so a
leaked table does not leak usable keys. Keys are sent as `Authorization: Bearer <key>`
(OAuth2 bearer style) or `X-API-Key: <key>`.

Platform-admin keys (`cta_<prefix>_<secret>`, `coffeetrace admin-key create`) open the
admin API (/admin/...) and nothing else. They live in a table of their own
(platform_admin_keys), stored the same way, so a cooperative key of any role is never
one, and one is never a cooperative's key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.errors import Forbidden, Unauthorized, ValidationFailed
from coffeetrace.sql import load_queries

ROLES = ("admin", "operator", "read-only")
_RANK = {"read-only": 0, "operator": 1, "admin": 2}


SQL = load_queries("coffeetrace.api", "auth.sql")
ADMIN_SQL = load_queries("coffeetrace.api", "admin.sql")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key, its cooperative and role."""

    key_id: UUID
    cooperative_id: UUID
    cooperative_code: str
    role: str

    def require(self, role: str) -> None:
        """Raise Forbidden unless this caller's role is at least `role`."""
        if _RANK[self.role] < _RANK[role]:
            raise Forbidden(
                f"this needs the {role} role; the API key has the {self.role} role",
                required_role=role,
                role=self.role,
            )


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `token` is shown once and never stored."""

    row: dict[str, Any]
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(
    conn: psycopg.Connection[dict[str, Any]], cooperative_id: UUID, role: str, name: str = ""
) -> IssuedKey:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    prefix = secrets.token_hex(4)
    token = f"ct_{prefix}_{secrets.token_urlsafe(32)}"
    row = conn.execute(
        SQL["insert_api_key"],
        dict(
            cooperative_id=cooperative_id,
            name=name,
            role=role,
            prefix=prefix,
            token_hash=hash_token(token),
        ),
    ).fetchone()
    assert row is not None  # insert ... returning
    return IssuedKey(row=row, token=token)


def caller_for_token(conn: psycopg.Connection[dict[str, Any]], token: str) -> Caller:
    """The caller a key belongs to; Unauthorized for unknown or revoked keys."""
    if not token or len(token) > 200:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    row = conn.execute(SQL["caller_by_token_hash"], {"token_hash": hash_token(token)}).fetchone()
    if row is None:
        raise Unauthorized(
            "the API key is unknown or revoked; ask an admin of your cooperative "
            "for a new one (coffeetrace apikey create)"
        )
    conn.execute(SQL["touch_api_key"], {"id": row["key_id"]})
    return Caller(
        key_id=row["key_id"],
        cooperative_id=row["cooperative_id"],
        cooperative_code=row["cooperative_code"],
        role=row["role"],
    )


# --- platform-admin keys ------------------------------------------------------------
@dataclass(frozen=True)
class PlatformAdmin:
    """A caller of the admin API: the platform-admin key it used."""

    key_id: UUID
    name: str


def create_platform_admin_key(conn: psycopg.Connection[dict[str, Any]], name: str) -> IssuedKey:
    """A new platform-admin key; its token is shown once and only its SHA-256 stored."""
    prefix = secrets.token_hex(4)
    token = f"cta_{prefix}_{secrets.token_urlsafe(32)}"
    row = conn.execute(
        ADMIN_SQL["insert_platform_admin_key"],
        dict(name=name, prefix=prefix, token_hash=hash_token(token)),
    ).fetchone()
    assert row is not None  # insert ... returning
    return IssuedKey(row=row, token=token)


def platform_admin_for_token(conn: psycopg.Connection[dict[str, Any]], token: str) -> PlatformAdmin:
    """The platform admin a key belongs to; Forbidden for a cooperative's key (it is
    valid, just not for this), Unauthorized for unknown or revoked keys."""
    if not token or len(token) > 200:
        raise Unauthorized(
            "send a platform-admin key as 'Authorization: Bearer <key>' or 'X-API-Key'"
        )
    token_hash = hash_token(token)
    row = conn.execute(ADMIN_SQL["platform_admin_by_token_hash"], {"token_hash": token_hash})
    found = row.fetchone()
    if found is None:
        if conn.execute(SQL["caller_by_token_hash"], {"token_hash": token_hash}).fetchone():
            raise Forbidden(
                "this is a cooperative's API key; the admin API needs a platform-admin key"
                " (coffeetrace admin-key create)"
            )
        raise Unauthorized(
            "the platform-admin key is unknown or revoked; make one with"
            " `coffeetrace admin-key create` on the server"
        )
    conn.execute(ADMIN_SQL["touch_platform_admin_key"], {"id": found["id"]})
    return PlatformAdmin(key_id=found["id"], name=found["name"])


def list_platform_admin_keys(conn: psycopg.Connection[dict[str, Any]]) -> list[dict[str, Any]]:
    return conn.execute(ADMIN_SQL["list_platform_admin_keys"]).fetchall()


def revoke_platform_admin_key(
    conn: psycopg.Connection[dict[str, Any]], key_id: UUID
) -> dict[str, Any] | None:
    """The key's row once revoked (kept, with `revoked_at`), or None when there is none."""
    return conn.execute(ADMIN_SQL["revoke_platform_admin_key"], {"id": key_id}).fetchone()
