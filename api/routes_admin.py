"""The platform admin API: cooperatives (create, list, read), their GS1 company prefixes,
and the first API keys of a new cooperative.

Only a platform-admin key opens it (`coffeetrace admin-key create`, api/auth.py); a
cooperative's key, whatever its role, is answered 403. The rules live in
trace/cooperatives.py, which `coffeetrace coop ...` calls too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from coffeetrace.api import auth
from coffeetrace.api.auth import PlatformAdmin
from coffeetrace.api.deps import Conn, Keys, Limit
from coffeetrace.api.schemas import (
    ApiKey,
    ApiKeyIn,
    Error,
    IssuedApiKey,
    Page,
    Strict,
    error_responses,
)
from coffeetrace.errors import Unauthorized
from coffeetrace.trace import cooperatives

router = APIRouter(
    prefix="/admin", tags=["admin"], responses=error_responses(401, 403, 404, 409, 422)
)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PlatformAdminBearer",
    description="Platform-admin key (coffeetrace admin-key create) as a bearer token",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="PlatformAdminKey",
    description="Platform-admin key",
)


def get_platform_admin(
    conn: Conn,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key)] = None,
) -> PlatformAdmin:
    token = bearer.credentials if bearer is not None else api_key
    if not token:
        raise Unauthorized(
            "send a platform-admin key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            " (coffeetrace admin-key create)"
        )
    return auth.platform_admin_for_token(conn, token)


Admin = Annotated[PlatformAdmin, Depends(get_platform_admin)]
CoopCode = Annotated[str, Path(max_length=40, description="The cooperative's code.")]
# The formats of trace/cooperatives.py, stated in the schema too. What no pattern can say
# (a prefix in a range GS1 assigns to companies, by biip's table) is the domain's 422.
CODE = f"^{cooperatives.CODE.pattern}$"
PREFIX = f"^{cooperatives.COMPANY_PREFIX.pattern}$"
NAME = r"^[^\x00]*[^\s\x00][^\x00]*$"  # not blank; no NUL, which PostgreSQL text cannot hold
GS1Prefix = Annotated[
    str,
    Field(
        pattern=PREFIX,
        description="A GS1 company prefix: 4 to 12 digits, as GS1 assigned it (no item"
        " reference, no check digit), in a range GS1 assigns to companies.",
        examples=["8936051"],
    ),
]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Error,
        "description": "Invalid request, or a prefix GS1 does not assign to companies"
        " (restricted circulation numbers, ISBN, ISSN, coupons, unassigned ranges)",
    }
}


class CooperativeIn(Strict):
    code: str = Field(
        pattern=CODE,
        description="2 to 40 characters of a-z, 0-9 and '-' (in URLs and `--coop`).",
        examples=["ea-tu"],
    )
    name: str = Field(max_length=cooperatives.MAX_NAME, pattern=NAME, examples=["HTX Ea Tu"])
    gs1_prefixes: list[GS1Prefix] = Field(
        default_factory=list,
        max_length=20,
        description="GS1 company prefixes GS1 assigned to the cooperative; its products'"
        " GTINs must come from one of them.",
    )
    country: str = Field(
        "VN", pattern=f"^{cooperatives.COUNTRY.pattern}$", description="ISO 3166 alpha-2."
    )
    province: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")


class Cooperative(BaseModel):
    id: UUID
    code: str
    name: str
    country: str
    province: str | None
    gs1_prefixes: list[str]
    created_at: datetime


class CreatedCooperative(Cooperative):
    signing_key_id: str = Field(
        description="Its Ed25519 key, made now and published at /.well-known/coffeetrace-keys."
    )


class PrefixIn(Strict):
    prefix: GS1Prefix


@router.post(
    "/cooperatives",
    response_model=CreatedCooperative,
    status_code=201,
    summary="A new cooperative, with its GS1 company prefixes and signing key",
    responses=INVALID,
)
def create_cooperative(body: CooperativeIn, conn: Conn, admin: Admin, keys: Keys) -> dict:
    return cooperatives.create_cooperative(
        conn,
        body.code,
        body.name,
        keys=keys,
        gs1_prefixes=body.gs1_prefixes,
        country=body.country,
        province=body.province,
    )


@router.get("/cooperatives", response_model=Page[Cooperative], summary="Every cooperative")
def list_cooperatives(
    conn: Conn,
    admin: Admin,
    limit: Limit = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=f"^{cooperatives.CODE.pattern}$",
            description="`next_cursor` of the previous page (a cooperative's code).",
        ),
    ] = None,
) -> dict:
    rows = cooperatives.list_cooperatives(conn, after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": rows[-1]["code"] if more and rows else None}


@router.get("/cooperatives/{code}", response_model=Cooperative, summary="One cooperative")
def get_cooperative(code: CoopCode, conn: Conn, admin: Admin) -> dict:
    return cooperatives.get_cooperative(conn, code)


@router.post(
    "/cooperatives/{code}/gs1-prefixes",
    response_model=Cooperative,
    status_code=201,
    summary="Give the cooperative one more GS1 company prefix",
    description="Refused (409) when it equals, contains or lies inside a prefix any"
    " cooperative holds.",
    responses=INVALID,
)
def add_gs1_prefix(code: CoopCode, body: PrefixIn, conn: Conn, admin: Admin) -> dict:
    return cooperatives.add_gs1_prefix(conn, code, body.prefix)


@router.delete(
    "/cooperatives/{code}/gs1-prefixes/{prefix}",
    response_model=Cooperative,
    summary="Take a GS1 company prefix away (products keep the GTINs they have)",
)
def remove_gs1_prefix(
    code: CoopCode, prefix: Annotated[str, Path(max_length=40)], conn: Conn, admin: Admin
) -> dict:
    return cooperatives.remove_gs1_prefix(conn, code, prefix)


@router.post(
    "/cooperatives/{code}/api-keys",
    response_model=IssuedApiKey,
    status_code=201,
    summary="Issue an API key of the cooperative (its first admin's, say); shown once",
)
def create_cooperative_api_key(
    code: CoopCode, body: ApiKeyIn, conn: Conn, admin: Admin
) -> IssuedApiKey:
    coop = cooperatives.get_cooperative(conn, code)
    issued = auth.create_api_key(conn, coop["id"], body.role, body.name)
    return IssuedApiKey(key=ApiKey.model_validate(issued.row), token=issued.token)
