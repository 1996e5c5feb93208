"""Cooperatives, the tenants: creating one with its signing key and GS1 company prefixes,
listing them, and changing their prefixes.

This is what the platform admin does (api/routes_admin.py, `coffeetrace coop ...`); no
cooperative's own API key reaches it. Every function takes an open connection (the caller
owns the transaction).

GS1 company prefixes live in cooperative_gs1_prefixes (migration 0044); a product's GTIN
must come from one of the cooperative's (registry.create_product). A prefix is refused
unless it can be a company prefix (`check_company_prefix`), and when it equals, contains
or lies inside one any cooperative already holds: GS1 never assigns one company prefix
inside another, so an overlap is a typing error, or a cooperative about to allocate
another's GTINs. (registry.create_cooperative, which seeders and tests call, records its
one prefix without that last check.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

from biip.gs1_prefixes import GS1Prefix

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "cooperatives.sql")

CODE = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")  # the check of cooperatives.code (0001)
COUNTRY = re.compile(r"[A-Z]{2}")
COMPANY_PREFIX = re.compile(r"[0-9]{4,12}")  # GS1 General Specifications 1.4.4
MAX_NAME = 200


def check_company_prefix(prefix: str) -> str:
    """`prefix` when it can be a GS1 company prefix: 4 to 12 digits, starting with the GS1
    prefix of a GS1 Member Organisation (or of GS1 Global Office) that assigns company
    prefixes, by biip's table; otherwise ValidationFailed saying why (restricted
    circulation numbers, ISBN, ISSN, coupons and unassigned ranges are not)."""
    if not isinstance(prefix, str) or not COMPANY_PREFIX.fullmatch(prefix):
        raise ValidationFailed(
            f"GS1 company prefix {str(prefix)[:40]!r} must be 4 to 12 digits (0-9) as GS1"
            " assigned it, without the item reference or check digit",
            field="gs1_prefix",
        )
    gs1 = GS1Prefix.extract(prefix)
    if gs1 is None:
        raise ValidationFailed(
            f"{prefix} is not a GS1 company prefix: no GS1 Member Organisation holds"
            " numbers starting with its first digits",
            field="gs1_prefix",
            prefix=prefix,
        )
    usage = gs1.usage
    if not usage.startswith("GS1 ") or any(
        word in usage.lower() for word in ("reserved", "restricted", "gtin-8", "coupon")
    ):
        raise ValidationFailed(
            f"{prefix} is not a GS1 company prefix: GS1 keeps numbers starting with"
            f" {gs1.value} for another use ({usage})",
            field="gs1_prefix",
            prefix=prefix,
            gs1_prefix_usage=usage,
        )
    return prefix


def create_cooperative(
    conn: DbConn,
    code: str,
    name: str,
    *,
    keys: KeyRing,
    gs1_prefixes: Sequence[str] = (),
    country: str = "VN",
    province: str | None = None,
) -> Row:
    """A new cooperative with its GS1 company prefixes and its signing key, made now so
    that its public key is published (/.well-known/coffeetrace-keys) before it
    signs anything. Returns `get_cooperative`'s row and "signing_key_id".

    ValidationFailed for a bad code, name, country or prefix; Conflict when the code is
    taken or a prefix overlaps one held. A refused cooperative leaves nothing behind.
    """
    _check_fields(code, name, country)
    prefixes = list(dict.fromkeys(check_company_prefix(p) for p in gs1_prefixes))
    for i, prefix in enumerate(prefixes):
        for other in prefixes[:i]:
            if prefix.startswith(other) or other.startswith(prefix):
                raise Conflict(
                    f"GS1 company prefixes {other} and {prefix} overlap: GS1 never assigns"
                    " one company prefix inside another; give each once",
                    field="gs1_prefixes",
                )
    if registry.get_cooperative_by_code(conn, code) is not None:
        raise Conflict(f"a cooperative with the code {code!r} already exists", field="code")
    # a savepoint inside the caller's transaction: a refused prefix takes the row back too
    with conn.transaction():
        row = registry.create_cooperative(conn, code, name, country=country, province=province)
        for prefix in prefixes:
            _assign_prefix(conn, row["id"], prefix)
        # a new cooperative has no key yet: a rotation makes its first and retires none
        key_id = keys.rotate(row["id"])["active"]
    return {**get_cooperative(conn, code), "signing_key_id": key_id}


def _check_fields(code: str, name: str, country: str) -> None:
    if not CODE.fullmatch(code):
        raise ValidationFailed(
            f"cooperative code {code[:60]!r} must be 2 to 40 characters of a-z, 0-9 and '-',"
            " starting with a letter or digit",
            field="code",
        )
    if not name.strip() or len(name) > MAX_NAME:
        raise ValidationFailed(f"the name must be 1 to {MAX_NAME} characters", field="name")
    if not COUNTRY.fullmatch(country):
        raise ValidationFailed(
            f"country {country[:20]!r} must be an ISO 3166 alpha-2 code such as VN",
            field="country",
        )


def get_cooperative(conn: DbConn, code: str) -> Row:
    """{"id", "code", "name", "country", "province", "created_at", "gs1_prefixes"}."""
    row = q.one(conn, SQL["cooperative_with_prefixes"], {"code": code})
    if row is None:
        raise NotFound(f"no cooperative has the code {code[:60]!r}", kind="cooperative")
    return row


def list_cooperatives(conn: DbConn, *, after: str | None = None, limit: int = 50) -> list[Row]:
    """Cooperatives by code, after the code `after`, as `get_cooperative` gives them."""
    return q.rows(conn, SQL["list_cooperatives"], {"after": after, "limit": limit})


def add_gs1_prefix(conn: DbConn, code: str, prefix: str) -> Row:
    """Give the cooperative one more GS1 company prefix; its row as `get_cooperative`."""
    prefix = check_company_prefix(prefix)
    coop = get_cooperative(conn, code)
    _assign_prefix(conn, coop["id"], prefix)
    return get_cooperative(conn, code)


def remove_gs1_prefix(conn: DbConn, code: str, prefix: str) -> Row:
    """Take a prefix away: no new GTIN from it is accepted; products that have one keep
    it. The cooperative's row as `get_cooperative`; NotFound when it does not hold it."""
    coop = get_cooperative(conn, code)
    if q.one(conn, SQL["delete_gs1_prefix"], {"cooperative_id": coop["id"], "prefix": prefix}):
        return get_cooperative(conn, code)
    raise NotFound(
        f"cooperative {code} holds no GS1 company prefix {prefix[:40]!r}"
        f" (it holds: {', '.join(coop['gs1_prefixes']) or 'none'})",
        kind="gs1_prefix",
    )


def _assign_prefix(conn: DbConn, cooperative_id: UUID, prefix: str) -> None:
    q.one(conn, SQL["lock_gs1_prefixes"])
    for held in q.rows(conn, SQL["overlapping_gs1_prefixes"], {"prefix": prefix}):
        own = held["cooperative_id"] == cooperative_id
        holder = "this cooperative" if own else f"cooperative {held['cooperative_code']}"
        if held["prefix"] == prefix:
            raise Conflict(
                f"GS1 company prefix {prefix} is already held by {holder}",
                field="gs1_prefix",
                prefix=prefix,
                held_by=held["cooperative_code"],
            )
        raise Conflict(
            f"GS1 company prefix {prefix} overlaps {held['prefix']}, held by {holder}: GS1"
            " never assigns one company prefix inside another; check the number GS1 gave",
            field="gs1_prefix",
            prefix=prefix,
            held_prefix=held["prefix"],
            held_by=held["cooperative_code"],
        )
    q.one(conn, SQL["insert_gs1_prefix"], {"cooperative_id": cooperative_id, "prefix": prefix})
