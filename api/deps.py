"""Request dependencies: one pooled connection per request inside one transaction
(committed when the handler returns, rolled back when it raises), and the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, LiteralString
from uuid import UUID

import psycopg
from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from coffeetrace import db
from coffeetrace.api.auth import Caller, caller_for_token
from coffeetrace.db import DbConn
from coffeetrace.errors import Unauthorized
from coffeetrace.trace.keys import KeyRing

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def get_conn(request: Request) -> Iterator[DbConn]:
    """A connection in a transaction; handlers never commit themselves."""
    with db.transaction(request.app.state.pool) as conn:
        yield conn


# scope="function": the commit happens before the response is sent, so a 2xx means stored.
Conn = Annotated[DbConn, Depends(get_conn, scope="function")]


def get_keys(request: Request) -> KeyRing:
    """The cooperatives' signing keys (COFFEETRACE_KEYS_DIR): writers sign as they write."""
    keys: KeyRing = request.app.state.keys
    return keys


Keys = Annotated[KeyRing, Depends(get_keys)]


def get_caller(
    conn: Conn,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key)] = None,
) -> Caller:
    token = bearer.credentials if bearer is not None else api_key
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    return caller_for_token(conn, token)


def role(minimum: str) -> Callable[..., Caller]:
    """A dependency giving the caller after checking its role is at least `minimum`."""

    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        caller.require(minimum)
        return caller

    check.__name__ = f"require_{minimum.replace('-', '_')}"
    return check


Reader = Annotated[Caller, Depends(role("read-only"))]
Operator = Annotated[Caller, Depends(role("operator"))]
Admin = Annotated[Caller, Depends(role("admin"))]


def page(
    conn: psycopg.Connection[dict[str, Any]],
    query: LiteralString,
    params: dict[str, Any],
    limit: int,
    cursor_key: str = "id",
) -> dict[str, Any]:
    """One page of a keyset-paginated list: `items` and `next_cursor` (null on the last page)."""
    return page_of(
        conn.execute(query, {**params, "limit": limit + 1}).fetchall(), limit, cursor_key
    )


# the page parameters of every list: its size, and keyset pagination on the id (the last
# id of the previous page); a list whose cursor has another format declares its own
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
UuidCursor = Annotated[
    UUID | None, Query(description="`next_cursor` of the previous page, unchanged.")
]


def page_of(rows: list[dict[str, Any]], limit: int, cursor_key: str = "id") -> dict[str, Any]:
    """`rows` fetched with `limit + 1` as one page: `items` and `next_cursor` (null on the
    last page)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1][cursor_key]) if more and rows else None}
