"""Organisations (migration 0050, trace/organisations.py) against the real database: every
cooperative is a producer_group organisation with its data intact; profiles (public name,
country, GLN with its check digit) and roles change by their rules; only producer groups
register farms; the directory shows public profiles and nothing else."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.migrate import available_migrations
from coffeetrace.trace import cooperatives, organisations, registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world

GLN = "5901234123457"  # GS1's example GLN: check digit 7
GLN_VN = "8930000000019"


def _org(conn: psycopg.Connection, keys: KeyRing, code: str, *roles: str) -> dict:
    coop = cooperatives.create_cooperative(conn, code, f"Company {code}", keys=keys)
    if roles:
        organisations.set_roles(conn, code, roles)
    return coop


def test_cooperatives_before_0050_become_producer_groups_with_their_data(pg_server) -> None:
    name = f"ct_mig50_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True, row_factory=dict_row) as conn:
            migrations = [m for m in available_migrations() if not m.requires_timescaledb]
            for mig in (m for m in migrations if m.version < "0050"):
                conn.execute(mig.sql)
            before = conn.execute(
                "insert into cooperatives (code, name, country, province, gs1_company_prefix)"
                " values ('ea-tu', 'HTX Ea Tu', 'VN', 'Đắk Lắk', '893100') returning *"
            ).fetchone()
            conn.execute(
                "insert into cooperative_gs1_prefixes (cooperative_id, prefix) values (%s, %s)",
                (before["id"], "8931001"),
            )
            conn.execute(
                "insert into farms (cooperative_id, code) values (%s, 'F-1')", (before["id"],)
            )
            (m50,) = [m for m in migrations if m.version == "0050"]
            conn.execute(m50.sql)
            after = conn.execute("select * from cooperatives").fetchone()
            view = conn.execute("select * from organisations").fetchone()
            profile = organisations.get_profile(conn, before["id"])
        assert {k: after[k] for k in before} == before  # every old column as it was
        assert after["roles"] == ["producer_group"]
        assert after["public_name"] is None and after["gln"] is None
        assert view["id"] == before["id"] and view["public_name"] == "HTX Ea Tu"
        assert profile["gs1_prefixes"] == ["8931001"]
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def test_a_cooperative_is_a_producer_group_organisation(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    world = make_world(conn, keys=keys, code="ea-tu")
    profile = organisations.get_profile(conn, world.coop["id"])
    assert profile["roles"] == ["producer_group"]
    assert profile["public_name"] == profile["name"] == "Cooperative ea-tu"
    assert profile["gs1_prefixes"] == ["8930000"]  # cooperative_gs1_prefixes (0044)
    assert profile["country"] == "VN" and profile["gln"] is None
    with pytest.raises(NotFound):
        organisations.get_profile(conn, uuid.uuid4())


def test_the_profile_changes_field_by_field(conn: psycopg.Connection, keys: KeyRing) -> None:
    org = _org(conn, keys, "hamburg-imports", "importer")
    changed = organisations.update_profile(
        conn, org["id"], public_name="Hamburg Green Imports", country="DE", gln=GLN
    )
    assert (changed["public_name"], changed["country"], changed["gln"]) == (
        "Hamburg Green Imports",
        "DE",
        GLN,
    )
    kept = organisations.update_profile(conn, org["id"], gln=None)  # the others stay
    assert (kept["public_name"], kept["country"], kept["gln"]) == (
        "Hamburg Green Imports",
        "DE",
        None,
    )
    back = organisations.update_profile(conn, org["id"], public_name=None)
    assert back["public_name"] == "Company hamburg-imports"  # its name again
    assert organisations.update_profile(conn, org["id"]) == back  # nothing given


@pytest.mark.parametrize(
    ("gln", "reason"),
    [
        ("5901234123458", r"wrong check digit \(.*Expected 7, got 8\)"),
        ("590123412345", "13 digits"),
        ("59012341234577", "13 digits"),
        ("590123412345a", "13 digits"),
        ("\uff15901234123457", "13 digits"),  # a fullwidth digit
        ("5901234123457\n", "13 digits"),
    ],
)
def test_a_gln_needs_13_digits_and_its_check_digit(gln: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as info:
        organisations.check_gln(gln)
    assert info.value.details["field"] == "gln"


def test_refused_changes_leave_the_profile_and_the_transaction(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    a = _org(conn, keys, "exporter-a", "exporter")
    b = _org(conn, keys, "exporter-b", "exporter")
    organisations.update_profile(conn, a["id"], gln=GLN_VN)
    with pytest.raises(Conflict, match="another organisation's"):
        organisations.update_profile(conn, b["id"], gln=GLN_VN, public_name="B")
    with pytest.raises(ValidationFailed, match="ISO 3166-1 alpha-2"):
        organisations.update_profile(conn, b["id"], country="XK")  # user-assigned, not ISO
    with pytest.raises(ValidationFailed, match="ISO 3166-1 alpha-2"):
        organisations.update_profile(conn, b["id"], country="vn")
    with pytest.raises(ValidationFailed, match="public name"):
        organisations.update_profile(conn, b["id"], public_name="  ")
    # the savepoint kept the transaction usable, and nothing of the refused changes stayed
    profile = organisations.get_profile(conn, b["id"])
    assert (profile["public_name"], profile["gln"]) == ("Company exporter-b", None)


def test_countries_are_iso_3166_alpha_2() -> None:
    codes = organisations.countries()
    assert len(codes) == 249
    assert {"VN", "DE", "NL", "BE", "US", "JP", "AQ"} <= codes
    assert not {"EU", "UN", "XK", "ZZ", "UK"} & codes


def test_roles_are_set_by_their_rules(conn: psycopg.Connection, keys: KeyRing) -> None:
    _org(conn, keys, "bmt-export")
    got = organisations.set_roles(conn, "bmt-export", ["roaster", "exporter", "exporter"])
    assert got["roles"] == ["exporter", "roaster"]  # once each, in the chain's order
    for bad, reason in (([], "at least one role"), (["farmer"], "unknown role 'farmer'")):
        with pytest.raises(ValidationFailed, match=reason):
            organisations.set_roles(conn, "bmt-export", bad)
    with pytest.raises(NotFound):
        organisations.set_roles(conn, "nobody", ["exporter"])
    # the database holds the same rule for whatever writes without the domain
    for roles in ([], ["farmer"], [None]):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "update cooperatives set roles = %s::text[] where code = 'bmt-export'", (roles,)
            )


def test_only_a_producer_group_registers_farms(conn: psycopg.Connection, keys: KeyRing) -> None:
    exporter = _org(conn, keys, "bmt-export", "exporter")
    with pytest.raises(RuleViolation, match="only a producer_group") as info:
        registry.create_farm(conn, exporter["id"], "F-1", keys=keys)
    assert info.value.rule == "role_required"
    assert info.value.details["required_role"] == "producer_group"
    assert info.value.details["roles"] == ["exporter"]
    # a cooperative that also exports keeps registering farms
    world = make_world(conn, keys=keys, code="ea-tu")
    organisations.set_roles(conn, "ea-tu", ["producer_group", "exporter"])
    assert registry.create_farm(conn, world.coop["id"], "F-2", keys=keys)["code"] == "F-2"
    # and, holding farms, stays a producer group
    with pytest.raises(RuleViolation, match="has registered farms") as held:
        organisations.set_roles(conn, "ea-tu", ["exporter"])
    assert held.value.rule == "roles_in_use"
    assert organisations.get_profile(conn, world.coop["id"])["roles"] == [
        "producer_group",
        "exporter",
    ]


def test_the_directory_shows_public_profiles_only(conn: psycopg.Connection, keys: KeyRing) -> None:
    make_world(conn, keys=keys, code="ea-tu")
    roaster = _org(conn, keys, "hanoi-roast", "roaster", "retailer")
    organisations.update_profile(conn, roaster["id"], public_name="Hà Nội Roasters", gln=GLN)
    listed = organisations.directory(conn)
    assert [o["code"] for o in listed] == ["ea-tu", "hanoi-roast"]
    assert listed[1] == {
        "code": "hanoi-roast",
        "public_name": "Hà Nội Roasters",
        "country": "VN",
        "roles": ["roaster", "retailer"],
        "gln": GLN,
    }
    assert [o["code"] for o in organisations.directory(conn, role="retailer")] == ["hanoi-roast"]
    assert organisations.directory(conn, role="importer") == []
    assert [o["code"] for o in organisations.directory(conn, after="ea-tu")] == ["hanoi-roast"]
    assert len(organisations.directory(conn, limit=1)) == 1
    with pytest.raises(ValidationFailed):
        organisations.directory(conn, role="farmer")


def test_an_organisation_is_found_by_code_or_id(conn: psycopg.Connection, keys: KeyRing) -> None:
    org = _org(conn, keys, "bmt-export", "exporter")
    assert organisations.find(conn, "bmt-export")["id"] == org["id"]
    assert organisations.find(conn, str(org["id"]))["code"] == "bmt-export"
    assert organisations.find(conn, org["id"])["code"] == "bmt-export"
    # a code may look like an id: the organisation with that code is the one meant
    lookalike = _org(conn, keys, str(org["id"]))
    assert organisations.find(conn, str(org["id"]))["id"] == lookalike["id"]
    with pytest.raises(NotFound, match="GET /v1/organisations"):
        organisations.find(conn, "nobody")
