"""`coffeetrace coop create|list|add-prefix|remove-prefix` and `coffeetrace admin-key
create|list|revoke` against the real database: the platform admin's commands, with the
same rules as the admin API (trace/cooperatives.py)."""

from __future__ import annotations

import psycopg
import pytest

from coffeetrace.api.auth import caller_for_token, platform_admin_for_token
from coffeetrace.errors import Unauthorized
from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing
from tests.foundation.cli_run import run as _run


def test_coop_create_then_its_first_key(
    env: dict[str, str], conn: psycopg.Connection, keys: KeyRing
) -> None:
    out = _run(
        env,
        *("coop", "create", "ea-tu", "--name", "HTX Cà phê Ea Tu"),
        *("--gs1-prefix", "8936051", "--gs1-prefix", "8936052", "--province", "Đắk Lắk"),
    )
    assert "cooperative ea-tu" in out and "8936051, 8936052" in out
    assert "coffeetrace apikey create --coop ea-tu --role admin" in out
    coop = registry.get_cooperative_by_code(conn, "ea-tu")
    assert coop is not None and coop["province"] == "Đắk Lắk"
    (key,) = keys.public_keys(coop["id"])  # its signing key, made now
    assert key["key_id"] in out
    # the next step the command names works: the cooperative's first admin key
    token = _run(env, "apikey", "create", "--coop", "ea-tu", "--role", "admin").splitlines()[-1]
    assert caller_for_token(conn, token).cooperative_code == "ea-tu"
    for gtin in (gtin14("8936051", 1), gtin14("8936052", 2)):
        assert registry.create_product(conn, coop["id"], gtin, keys=keys, gtin=gtin)["gtin"]

    listed = _run(env, "coop", "list")
    assert "ea-tu\tHTX Cà phê Ea Tu\t8936051,8936052" in listed.splitlines()
    assert "8936051, 8936052, 8936053" in _run(env, "coop", "add-prefix", "ea-tu", "8936053")
    assert "8936051, 8936053" in _run(env, "coop", "remove-prefix", "ea-tu", "8936052")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("Ea Tu", "--name", "X"), "cooperative code"),
        (("ea-tu", "--name", "X", "--gs1-prefix", "893"), "4 to 12 digits"),
        (("ea-tu", "--name", "X", "--gs1-prefix", "2001234"), "Restricted Circulation"),
        (("ea-tu", "--name", "X", "--country", "vn"), "ISO 3166"),
    ],
)
def test_coop_create_refuses_with_the_reason(
    env: dict[str, str], conn: psycopg.Connection, args: tuple[str, ...], reason: str
) -> None:
    out = _run(env, "coop", "create", *args, code=2)
    assert reason in out and "Traceback" not in out
    assert registry.get_cooperative_by_code(conn, "ea-tu") is None


def test_coop_create_twice_and_prefixes_held_elsewhere(env: dict[str, str]) -> None:
    _run(env, "coop", "create", "coop-a", "--name", "A", "--gs1-prefix", "8931001")
    assert "already exists" in _run(env, "coop", "create", "coop-a", "--name", "A", code=2)
    out = _run(env, "coop", "create", "coop-b", "--name", "B", "--gs1-prefix", "89310012", code=2)
    assert "held by cooperative coop-a" in out
    assert "holds no GS1 company prefix" in _run(
        env, "coop", "remove-prefix", "coop-a", "8939999", code=2
    )
    assert "no cooperative" in _run(env, "coop", "add-prefix", "nope", "8939999", code=2)


def test_admin_keys_are_created_listed_and_revoked(
    env: dict[str, str], conn: psycopg.Connection
) -> None:
    out = _run(env, "admin-key", "create", "--name", "ops laptop")
    token = out.splitlines()[-1]
    assert token.startswith("cta_") and "not shown again" in out
    admin = platform_admin_for_token(conn, token)
    assert admin.name == "ops laptop"
    conn.commit()  # the check touched the key's last_used_at: release the row
    listed = _run(env, "admin-key", "list")
    assert f"{admin.key_id}\t{token.split('_')[1]}\tops laptop\tactive" in listed
    assert token not in listed
    assert "revoked" in _run(env, "admin-key", "revoke", str(admin.key_id))
    with pytest.raises(Unauthorized):
        platform_admin_for_token(conn, token)
    assert "revoked" in _run(env, "admin-key", "list")
    assert "is not a key id" in _run(env, "admin-key", "revoke", "nope", code=2)
    missing = "00000000-0000-0000-0000-000000000000"
    assert "no platform-admin key" in _run(env, "admin-key", "revoke", missing, code=2)
