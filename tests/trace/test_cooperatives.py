"""Creating cooperatives (with their signing key) and their GS1 company prefixes, against
the real database: several prefixes per cooperative, GTINs accepted inside any of them,
prefixes checked (digits, 4 to 12, a GS1 Member Organisation's range) and never shared."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.migrate import available_migrations
from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace import cooperatives, registry
from coffeetrace.trace.keys import KeyRing

A1, A2, B1 = "8931001", "8932002", "8933003"


@pytest.mark.parametrize("prefix", ["8936051", "4000", "0001234", "893605112345", "9501234"])
def test_company_prefixes_gs1_assigns_are_accepted(prefix: str) -> None:
    assert cooperatives.check_company_prefix(prefix) == prefix


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("893", "4 to 12 digits"),
        ("8936051123456", "4 to 12 digits"),
        ("89a6051", "4 to 12 digits"),
        (" 8936051", "4 to 12 digits"),
        ("8936051\n", "4 to 12 digits"),
        ("\uff18\uff19\uff13\uff16\uff10\uff15\uff11", "4 to 12 digits"),  # fullwidth digits
        ("2001234", "Restricted Circulation"),
        ("0201234", "Restricted Circulation"),
        ("9781234", "ISBN"),
        ("9771234", "ISSN"),
        ("0501234", "reserved"),
        ("8941234", "future MO"),
        ("9811234", "coupon"),
        ("9901234", "coupon"),
        ("9801234", "Refund receipts"),
        ("9521234", "demonstrations"),
    ],
)
def test_what_cannot_be_a_company_prefix_is_refused_with_the_reason(
    prefix: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed, match=reason) as info:
        cooperatives.check_company_prefix(prefix)
    assert info.value.details["field"] == "gs1_prefix"


def test_a_cooperative_is_created_with_its_prefixes_and_signing_key(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    coop = cooperatives.create_cooperative(
        conn, "ea-tu", "HTX Ea Tu", keys=keys, gs1_prefixes=[A2, A1, A1], province="Đắk Lắk"
    )
    assert coop["code"] == "ea-tu" and coop["country"] == "VN"
    assert coop["gs1_prefixes"] == [A1, A2]  # once each, in order
    # its key exists before its first signature, published, with nothing retired
    (key,) = keys.public_keys(coop["id"])
    assert key["key_id"] == coop["signing_key_id"] and key["valid_until"] is None
    # GTINs from either prefix (any packaging indicator), none from elsewhere
    for gtin in (gtin14(A1, 5), gtin14(A2, 6, indicator=3)):
        assert registry.create_product(conn, coop["id"], gtin, keys=keys, gtin=gtin)["gtin"]
    with pytest.raises(RuleViolation, match=f"prefixes {A1}, {A2}: ") as info:
        registry.create_product(conn, coop["id"], "other", keys=keys, gtin=gtin14(B1, 7))
    assert info.value.rule == "gtin_prefix"
    assert cooperatives.get_cooperative(conn, "ea-tu")["gs1_prefixes"] == [A1, A2]
    assert [c["code"] for c in cooperatives.list_cooperatives(conn)] == ["ea-tu"]


def test_refused_cooperatives_leave_nothing_behind(conn: psycopg.Connection, keys: KeyRing) -> None:
    cooperatives.create_cooperative(conn, "coop-a", "A", keys=keys, gs1_prefixes=[A1])
    refusals = [
        (Conflict, "already exists", dict(code="coop-a")),
        (ValidationFailed, "cooperative code", dict(code="Coop A")),
        (ValidationFailed, "cooperative code", dict(code="x")),
        (ValidationFailed, "name", dict(name=" ")),
        (ValidationFailed, "ISO 3166", dict(country="vn")),
        (ValidationFailed, "4 to 12 digits", dict(gs1_prefixes=["12"])),
        (Conflict, "overlap", dict(gs1_prefixes=[B1, B1 + "5"])),
        # held by coop-a, or inside / around it: never two holders of one GTIN range
        (Conflict, f"{A1} is already held by cooperative coop-a", dict(gs1_prefixes=[B1, A1])),
        (Conflict, f"overlaps {A1}, held by cooperative coop-a", dict(gs1_prefixes=[A1 + "9"])),
        (Conflict, f"overlaps {A1}, held by cooperative coop-a", dict(gs1_prefixes=[A1[:5]])),
    ]
    for error, message, change in refusals:
        args = {"code": "coop-b", "name": "B", "gs1_prefixes": [B1], **change}
        with pytest.raises(error, match=message):
            cooperatives.create_cooperative(
                conn, args.pop("code"), args.pop("name"), keys=keys, **args
            )
        # the connection is still usable, and no row, prefix or key is left
        assert registry.get_cooperative_by_code(conn, "coop-b") is None
    held = conn.execute("select prefix from cooperative_gs1_prefixes order by 1").fetchall()
    assert [r["prefix"] for r in held] == [A1]
    assert len([p for p in keys.root.iterdir() if p.is_dir()]) == 1


def test_prefixes_are_added_and_removed(conn: psycopg.Connection, keys: KeyRing) -> None:
    a = cooperatives.create_cooperative(conn, "coop-a", "A", keys=keys, gs1_prefixes=[A1])
    cooperatives.create_cooperative(conn, "coop-b", "B", keys=keys, gs1_prefixes=[B1])
    gtin = gtin14(A2, 1)
    with pytest.raises(RuleViolation, match=f"not from your GS1 company prefix {A1}"):
        registry.create_product(conn, a["id"], "P", keys=keys, gtin=gtin)
    assert cooperatives.add_gs1_prefix(conn, "coop-a", A2)["gs1_prefixes"] == [A1, A2]
    product = registry.create_product(conn, a["id"], "P", keys=keys, gtin=gtin)
    with pytest.raises(Conflict, match="already held by this cooperative"):
        cooperatives.add_gs1_prefix(conn, "coop-a", A2)
    with pytest.raises(Conflict, match=f"overlaps {A2}, held by this cooperative"):
        cooperatives.add_gs1_prefix(conn, "coop-a", A2 + "1")
    with pytest.raises(Conflict, match="held by cooperative coop-b"):
        cooperatives.add_gs1_prefix(conn, "coop-a", B1)
    with pytest.raises(ValidationFailed, match="ISBN"):
        cooperatives.add_gs1_prefix(conn, "coop-a", "9781234")
    with pytest.raises(NotFound, match="no cooperative"):
        cooperatives.add_gs1_prefix(conn, "coop-x", "8939999")
    # removed: no new GTIN from it, the product keeps its own
    assert cooperatives.remove_gs1_prefix(conn, "coop-a", A2)["gs1_prefixes"] == [A1]
    with pytest.raises(RuleViolation, match="gtin_prefix|not from your"):
        registry.create_product(conn, a["id"], "P2", keys=keys, gtin=gtin14(A2, 2))
    kept = conn.execute("select gtin from products where id = %s", (product["id"],)).fetchone()
    assert kept["gtin"] == gtin
    with pytest.raises(NotFound, match=f"holds no GS1 company prefix '{A2}' \\(it holds: {A1}\\)"):
        cooperatives.remove_gs1_prefix(conn, "coop-a", A2)


def test_the_seeders_one_prefix_is_recorded_in_the_table(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    """registry.create_cooperative(gs1_company_prefix=...) (seeders, test factories) keeps
    working: its prefix is one of the cooperative's, and the only one."""
    coop = registry.create_cooperative(conn, "seeded", "Seeded", gs1_company_prefix=A1)
    assert cooperatives.get_cooperative(conn, "seeded")["gs1_prefixes"] == [A1]
    assert registry.create_product(conn, coop["id"], "P", keys=keys, gtin=gtin14(A1, 3))["gtin"]


def test_migration_0044_moves_the_one_prefix_column_into_the_table(pg_server) -> None:
    name = f"ct_mig44_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True, row_factory=dict_row) as conn:
            migrations = [m for m in available_migrations() if not m.requires_timescaledb]
            for mig in (m for m in migrations if m.version < "0044"):
                conn.execute(mig.sql)
            conn.execute(
                "insert into cooperatives (code, name, gs1_company_prefix)"
                " values ('old-a', 'A', '893100'), ('old-none', 'None', null)"
            )
            (m44,) = [m for m in migrations if m.version == "0044"]
            conn.execute(m44.sql)
            rows = conn.execute(
                "select c.code, p.prefix from cooperative_gs1_prefixes p"
                " join cooperatives c on c.id = p.cooperative_id"
            ).fetchall()
        assert rows == [{"code": "old-a", "prefix": "893100"}]
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
