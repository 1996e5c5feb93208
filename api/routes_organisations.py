"""Organisations and trading partners: the caller's own profile, the directory of public
profiles, partnerships (propose, accept, decline, end), and the platform admin's setting
of an organisation's roles.

The caller's organisation is its API key's cooperative (`caller.cooperative_id` is the
organisation's id: the tenant id kept its old name, migration 0050). Roles as today:
read-only reads, admin changes the profile and the partnerships. A partnership the caller
is not a party to answers 404, as one that does not exist. The rules are
trace/organisations.py's and trace/partners.py's, which `coffeetrace org|partner` calls
too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, JsonValue, field_validator

from coffeetrace.api import routes_admin
from coffeetrace.api.deps import Admin, Conn, Keys, Limit, Reader, UuidCursor, page_of
from coffeetrace.api.schemas import Error, Page, Strict, error_responses
from coffeetrace.trace import organisations, partners

router = APIRouter()

Role = Literal["producer_group", "processor", "exporter", "importer", "roaster", "retailer"]
Scope = Literal["public_provenance", "eudr_geolocation"]
Status = Literal["proposed", "active", "declined", "ended"]
# an organisation's code, or its id as the API gives it (a lower-case UUID fits too)
CODE = r"^[a-z0-9][a-z0-9-]{1,39}$"
NAME = r"^[^\x00]*[^\s\x00][^\x00]*$"  # not blank; no NUL, which PostgreSQL text cannot hold
GLN = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{13}$",
        # 13 digits whose last is the GS1 mod-10 check digit (as a GTIN-13's)
        json_schema_extra={"format": "gln"},
        description="A GS1 Global Location Number: 13 digits, the last the GS1 check digit.",
        examples=["5901234123457"],
    ),
]
ROLE_LIST = "; ".join(f"`{r}`: {m}" for r, m in organisations.ROLE_MEANING.items())
COUNTRIES: list[JsonValue] = [*sorted(organisations.countries())]


def _errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The project's error entries for `codes`, with an operation's own descriptions
    (`e422="..."`) where it says more than the generic one."""
    entries = error_responses(*codes)
    for key, text in described.items():
        entries[int(key[1:])] = {"model": Error, "description": text}
    return entries


# --- bodies -------------------------------------------------------------------------
class PublicProfile(BaseModel):
    """What every organisation may know of another: nothing else."""

    code: str
    public_name: str
    country: str = Field(description="ISO 3166-1 alpha-2.")
    roles: list[Role]
    gln: str | None


class OrganisationProfile(BaseModel):
    id: UUID = Field(description="The organisation's id (the `cooperative_id` of its rows).")
    code: str
    name: str
    public_name: str = Field(description="What others see; its name unless it set another.")
    country: str
    province: str | None
    roles: list[Role] = Field(description=ROLE_LIST)
    gln: str | None
    gs1_prefixes: list[str] = Field(description="Its GS1 company prefixes (the platform admin's).")
    created_at: datetime


class ProfileIn(Strict):
    """A field left out is kept."""

    public_name: str | None = Field(
        None,
        max_length=organisations.MAX_PUBLIC_NAME,
        pattern=NAME,
        description="The name other organisations and buyers see; null: its name.",
        examples=["Ea Tu Coffee Cooperative"],
    )
    # optional, not nullable: an organisation always has a country
    country: str = Field(  # type: ignore[assignment]
        None,
        json_schema_extra={"enum": COUNTRIES},
        description="ISO 3166-1 alpha-2 code, such as VN or DE.",
    )
    gln: GLN | None = Field(None, description="Its GLN; null removes it.")


class PartnerIn(Strict):
    partner: str = Field(
        pattern=CODE,
        description="The other organisation's code (GET /v1/organisations) or id.",
        examples=["hamburg-green-imports"],
    )
    scopes: list[Scope] = Field(
        default_factory=lambda: cast(list[Scope], list(partners.DEFAULT_SCOPES)),
        min_length=1,
        max_length=len(partners.SCOPES),
        json_schema_extra={"uniqueItems": True},
        description="What each may see of the other's upstream data: `public_provenance`"
        " (the public provenance of shipped lots), `eudr_geolocation` (the plots of shipped"
        " lots, for the EUDR). Never a farm's personal data.",
    )

    @field_validator("scopes")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each scope once")
        return value


class Partnership(BaseModel):
    id: UUID
    status: Status
    scopes: list[Scope]
    proposer: str = Field(description="Code of the organisation that proposed it.")
    invitee: str = Field(description="Code of the organisation it was proposed to.")
    proposed_by_us: bool = Field(description="Whether the caller's organisation proposed it.")
    proposed_at: datetime
    accepted_at: datetime | None
    declined_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None = Field(description="Code of the organisation that ended it.")
    partner: PublicProfile = Field(description="The other organisation.")


class RolesIn(Strict):
    roles: list[Role] = Field(
        min_length=1,
        max_length=len(organisations.ROLES),
        json_schema_extra={"uniqueItems": True},
        description=ROLE_LIST,
    )

    @field_validator("roles")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each role once")
        return value


PartnershipId = Annotated[UUID, Path(description="The partnership's id.")]


# --- the caller's organisation --------------------------------------------------------
@router.get(
    "/v1/organisations/me",
    response_model=OrganisationProfile,
    tags=["organisations"],
    summary="The API key's organisation: its profile, roles and GS1 company prefixes",
    responses=_errors(401, 503),
)
def get_own_profile(conn: Conn, caller: Reader) -> dict:
    return organisations.get_profile(conn, caller.cooperative_id)


@router.patch(
    "/v1/organisations/me",
    response_model=OrganisationProfile,
    tags=["organisations"],
    summary="Change the organisation's public name, country or GLN (admins)",
    description="Roles are the platform admin's (PUT /admin/organisations/{code}/roles).",
    responses=_errors(
        401,
        403,
        413,
        503,
        e409="The GLN is another organisation's",
        e422="Invalid request, or a GLN whose check digit is wrong",
    ),
)
def patch_own_profile(body: ProfileIn, conn: Conn, caller: Admin) -> dict:
    given = body.model_fields_set
    changes: dict[str, Any] = {name: getattr(body, name) for name in given}
    return organisations.update_profile(conn, caller.cooperative_id, **changes)


@router.get(
    "/v1/organisations",
    response_model=Page[PublicProfile],
    tags=["organisations"],
    summary="The directory: every organisation's public profile, by code",
    responses=_errors(401, 422, 503),
)
def list_organisations(
    conn: Conn,
    caller: Reader,
    role: Annotated[Role | None, Query(description="Only organisations with this role.")] = None,
    limit: Limit = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=CODE, description="`next_cursor` of the previous page (a code)."),
    ] = None,
) -> dict:
    rows = organisations.directory(conn, role=role, after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": rows[-1]["code"] if more and rows else None}


# --- partners -----------------------------------------------------------------------
@router.get(
    "/v1/partners",
    response_model=Page[Partnership],
    tags=["partners"],
    summary="The organisation's partnerships, proposed, active, declined and ended",
    responses=_errors(401, 422, 503),
)
def list_partnerships(
    conn: Conn,
    caller: Reader,
    status: Annotated[Status | None, Query(description="Only those in this state.")] = None,
    limit: Limit = 50,
    cursor: UuidCursor = None,
) -> dict:
    rows = partners.list_partnerships(
        conn, caller.cooperative_id, status=status, after=cursor, limit=limit + 1
    )
    return page_of(rows, limit)


@router.post(
    "/v1/partners",
    response_model=Partnership,
    status_code=201,
    tags=["partners"],
    summary="Propose a trading partnership to another organisation (admins)",
    description="The other organisation accepts or declines it. Recorded as an event in"
    " both organisations' chains.",
    responses=_errors(
        401,
        403,
        413,
        503,
        e404="No organisation has that code or id",
        e409="The two have an open partnership already (details.partnership_id; the"
        " message says whose move it is)",
        e422="Invalid request, or the caller's own organisation named (rule partner_self)",
    ),
)
def propose_partnership(body: PartnerIn, conn: Conn, caller: Admin, keys: Keys) -> dict:
    return partners.propose(
        conn, caller.cooperative_id, body.partner, keys=keys, scopes=body.scopes
    )


@router.get(
    "/v1/partners/{partnership_id}",
    response_model=Partnership,
    tags=["partners"],
    summary="One of the organisation's partnerships",
    responses=_errors(401, 422, 503, e404="Not a partnership of the caller's organisation"),
)
def get_partnership(partnership_id: PartnershipId, conn: Conn, caller: Reader) -> dict:
    return partners.get(conn, caller.cooperative_id, partnership_id)


TRANSITION_ERRORS = _errors(
    401,
    403,
    422,
    503,
    e404="Not a partnership of the caller's organisation",
    e409="The partnership is not in a state this changes (the message says which it is)",
)


@router.post(
    "/v1/partners/{partnership_id}/accept",
    response_model=Partnership,
    tags=["partners"],
    summary="Accept a partnership proposed to the organisation (admins)",
    responses=TRANSITION_ERRORS,
)
def accept_partnership(
    partnership_id: PartnershipId, conn: Conn, caller: Admin, keys: Keys
) -> dict:
    return partners.accept(conn, caller.cooperative_id, partnership_id, keys=keys)


@router.post(
    "/v1/partners/{partnership_id}/decline",
    response_model=Partnership,
    tags=["partners"],
    summary="Decline a partnership proposed to the organisation (admins)",
    responses=TRANSITION_ERRORS,
)
def decline_partnership(
    partnership_id: PartnershipId, conn: Conn, caller: Admin, keys: Keys
) -> dict:
    return partners.decline(conn, caller.cooperative_id, partnership_id, keys=keys)


@router.post(
    "/v1/partners/{partnership_id}/end",
    response_model=Partnership,
    tags=["partners"],
    summary="End a partnership, or withdraw a proposal (admins of either organisation)",
    responses=TRANSITION_ERRORS,
)
def end_partnership(partnership_id: PartnershipId, conn: Conn, caller: Admin, keys: Keys) -> dict:
    return partners.end(conn, caller.cooperative_id, partnership_id, keys=keys)


# --- the platform admin's -------------------------------------------------------------
@router.put(
    "/admin/organisations/{code}/roles",
    response_model=OrganisationProfile,
    tags=["admin"],
    summary="Set an organisation's roles (platform admin)",
    description="An organisation with farms keeps the role producer_group (rule roles_in_use).",
    # the admin API's statuses (api/routes_admin.py) with this operation's own reasons
    responses=_errors(
        401,
        409,
        413,
        503,
        e403="A cooperative's API key (this needs a platform-admin key)",
        e404="No organisation has that code",
        e422="Invalid request, or producer_group taken from an organisation with farms",
    ),
)
def set_roles(
    code: Annotated[str, Path(max_length=40, description="The organisation's code.")],
    body: RolesIn,
    conn: Conn,
    admin: routes_admin.Admin,
) -> dict:
    return organisations.set_roles(conn, code, body.roles)
