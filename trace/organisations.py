"""Organisations: every tenant, with its roles in the chain, public name, country, GLN and
GS1 company prefixes; their profiles, their public directory, and the rules of roles.

The table is still `cooperatives` and the tenant id is still `cooperative_id` everywhere
(migration 0050 explains why): an organisation's id IS its cooperative id, so every
function of the domain that takes a `cooperative_id` takes an organisation's id. A
cooperative is an organisation with the role producer_group.

Roles are the platform admin's to set (`set_roles`: /admin/organisations/{code}/roles,
`coffeetrace org set-roles`); an organisation edits its own public name, country and GLN
(`update_profile`). Only a producer group registers farms, and through them plots, trees
and harvests (`require_role`, called by registry.create_farm). GS1 company prefixes are
cooperative_gs1_prefixes (trace/cooperatives.py assigns them); this module only reads
them. Every function takes an open connection (the caller owns the transaction).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any, Final
from uuid import UUID

import psycopg
from babel import Locale
from biip import ParseError
from biip.gln import Gln

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q

SQL = load_queries("coffeetrace.trace", "organisations.sql")

PRODUCER_GROUP: Final = "producer_group"
# In the order the chain runs, which is the order an organisation's roles are kept in.
ROLES: Final = (PRODUCER_GROUP, "processor", "exporter", "importer", "roaster", "retailer")
ROLE_MEANING: Final = {
    PRODUCER_GROUP: "a cooperative or farmers' group: registers farms, plots, trees, harvests",
    "processor": "a mill or processing station (drying, hulling, grading)",
    "exporter": "sells green coffee abroad",
    "importer": "buys green coffee into its market (the EUDR operator placing it there)",
    "roaster": "roasts, blends and packs",
    "retailer": "sells packed coffee to buyers",
}
MAX_PUBLIC_NAME: Final = 200
GLN_DIGITS: Final = re.compile(r"[0-9]{13}")

# CLDR's territories that are not ISO 3166-1 alpha-2 country codes: exceptionally
# reserved codes (AC, CP, CQ, DG, EA, EU, EZ, IC, TA, UN), user-assigned ones (QO, XA, XB,
# XK) and "unknown region" (ZZ).
_NOT_ISO_3166: Final = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "TA", "UN", "QO", "XA", "XB", "XK", "ZZ"}
)


@cache
def countries() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes (249), from the CLDR data babel ships."""
    return frozenset(
        code
        for code in Locale("en").territories
        if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_ISO_3166
    )


def check_country(country: str) -> str:
    """`country` when it is an ISO 3166-1 alpha-2 code (upper case, as VN or DE)."""
    if not isinstance(country, str) or country not in countries():
        raise ValidationFailed(
            f"country {str(country)[:20]!r} is not an ISO 3166-1 alpha-2 code; give two"
            " capital letters such as VN, DE or US",
            field="country",
        )
    return country


def check_gln(gln: str) -> str:
    """`gln` when it is a GS1 Global Location Number: 13 digits whose last is the GS1
    check digit of the first 12 (biip); otherwise ValidationFailed saying which."""
    if not isinstance(gln, str) or not GLN_DIGITS.fullmatch(gln):
        raise ValidationFailed(
            f"GLN {str(gln)[:40]!r} must be 13 digits (0-9), as GS1 allocated it",
            field="gln",
        )
    try:
        Gln.parse(gln)
    except ParseError as exc:
        # biip's message names the expected check digit ("Expected 7, got 8")
        raise ValidationFailed(
            f"GLN {gln} has a wrong check digit ({str(exc).rstrip('.')}); check the number,"
            " a digit was probably mistyped",
            field="gln",
            gln=gln,
        ) from None
    return gln


def check_public_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_PUBLIC_NAME:
        raise ValidationFailed(
            f"the public name must be 1 to {MAX_PUBLIC_NAME} characters, not blank",
            field="public_name",
        )
    if "\x00" in name:
        raise ValidationFailed("the public name holds a NUL character", field="public_name")
    return name


def check_roles(roles: Iterable[str]) -> list[str]:
    """The roles once each, in `ROLES` order; ValidationFailed for none or an unknown one."""
    given = list(roles)
    unknown = [r for r in given if r not in ROLES]
    if unknown:
        raise ValidationFailed(
            f"unknown role {str(unknown[0])[:40]!r}: an organisation's roles are"
            f" {', '.join(ROLES)}",
            field="roles",
        )
    if not given:
        raise ValidationFailed(
            f"an organisation has at least one role ({', '.join(ROLES)})", field="roles"
        )
    return [r for r in ROLES if r in given]


# --- reading ------------------------------------------------------------------------
def get_profile(conn: DbConn, organisation_id: UUID) -> Row:
    """The organisation's own profile: {"id", "code", "name", "public_name" (its name
    when it set none), "country", "province", "roles", "gln", "gs1_prefixes",
    "created_at"}."""
    row = q.one(conn, SQL["organisation_profile"], {"id": organisation_id})
    if row is None:
        raise NotFound(f"no organisation has the id {organisation_id}", kind="organisation")
    return row


def find(conn: DbConn, ref: str | UUID) -> Row:
    """The public profile ({"id", "code", "public_name", "country", "roles", "gln"}) of
    the organisation with the code or id `ref`; NotFound otherwise."""
    as_id: UUID | None
    if isinstance(ref, UUID):
        as_id, code = ref, str(ref)
    else:
        code = ref
        try:
            as_id = UUID(ref)
        except ValueError:
            as_id = None
    row = q.one(conn, SQL["organisation_by_code_or_id"], {"code": code, "id": as_id})
    if row is None:
        raise NotFound(
            f"no organisation has the code or id {str(ref)[:60]!r}"
            " (GET /v1/organisations lists them)",
            kind="organisation",
        )
    return row


def directory(
    conn: DbConn, *, role: str | None = None, after: str | None = None, limit: int = 50
) -> list[Row]:
    """Public profiles ({"code", "public_name", "country", "roles", "gln"}, nothing
    else) by code, after the code `after`; only those with `role` when given."""
    if role is not None:
        check_roles([role])
    return q.rows(
        conn, SQL["organisation_directory"], {"role": role, "after": after, "limit": limit}
    )


def roles_of(conn: DbConn, organisation_id: UUID) -> list[str]:
    row = q.one(conn, SQL["organisation_roles"], {"id": organisation_id})
    if row is None:
        raise NotFound(f"no organisation has the id {organisation_id}", kind="organisation")
    return list(row["roles"])


def require_role(conn: DbConn, organisation_id: UUID, role: str, doing: str) -> None:
    """RuleViolation "role_required" (422) unless the organisation has `role`; `doing`
    says what it tried ("register farms")."""
    held = roles_of(conn, organisation_id)
    if role not in held:
        raise RuleViolation(
            "role_required",
            f"only a {role} organisation may {doing}; yours is {', '.join(held)}"
            " (the platform admin sets an organisation's roles)",
            required_role=role,
            roles=held,
        )


# --- changing -----------------------------------------------------------------------
_KEEP: Any = object()  # a field update_profile leaves as it is


def update_profile(
    conn: DbConn,
    organisation_id: UUID,
    *,
    public_name: str | None = _KEEP,
    country: str = _KEEP,
    gln: str | None = _KEEP,
) -> Row:
    """Change what the organisation says of itself; a field not given is kept, and a
    public name or GLN given as None is removed (the public name is then its name).
    Returns `get_profile`. Conflict when another organisation holds the GLN."""
    params = {
        "id": organisation_id,
        "set_public_name": public_name is not _KEEP,
        "public_name": None if public_name in (_KEEP, None) else check_public_name(public_name),
        "set_country": country is not _KEEP,
        "country": None if country is _KEEP else check_country(country),
        "set_gln": gln is not _KEEP,
        "gln": None if gln in (_KEEP, None) else check_gln(gln),
    }
    try:
        with conn.transaction():  # a savepoint: a refused GLN leaves the caller's work
            row = q.one(conn, SQL["update_organisation_profile"], params)
    except psycopg.errors.UniqueViolation:
        # GLNs are public (the directory lists them): naming the clash reveals nothing
        raise Conflict(
            f"GLN {params['gln']} is another organisation's; a GLN identifies one party",
            field="gln",
            constraint="cooperatives_gln_key",
        ) from None
    if row is None:
        raise NotFound(f"no organisation has the id {organisation_id}", kind="organisation")
    return get_profile(conn, organisation_id)


def set_roles(conn: DbConn, code: str, roles: Iterable[str]) -> Row:
    """The platform admin's: replace the roles of the organisation `code`; returns
    `get_profile`. An organisation with farms stays a producer group (RuleViolation
    "roles_in_use"), so that only producer groups ever hold farms, plots and trees."""
    wanted = check_roles(roles)
    org = find(conn, code)
    if org["code"] != code:
        raise NotFound(f"no organisation has the code {code[:60]!r}", kind="organisation")
    if PRODUCER_GROUP not in wanted and PRODUCER_GROUP in org["roles"]:
        farms = q.one(conn, SQL["organisation_has_farms"], {"id": org["id"]})
        if farms is not None and farms["has_farms"]:
            raise RuleViolation(
                "roles_in_use",
                f"organisation {code} has registered farms, so it stays a {PRODUCER_GROUP};"
                " give it the other roles beside that one",
                roles=list(org["roles"]),
            )
    q.one(conn, SQL["set_organisation_roles"], {"id": org["id"], "roles": wanted})
    return get_profile(conn, org["id"])
