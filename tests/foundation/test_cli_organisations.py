"""`coffeetrace org show|set-roles` and `coffeetrace partner list|propose|accept|decline|end`
against the real database, with the rules of trace/organisations.py and trace/partners.py."""

from __future__ import annotations

import json
from uuid import UUID

import psycopg

from coffeetrace.trace import partners
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain
from tests.factories import make_world
from tests.foundation.cli_run import run as _run


def test_roles_and_a_partnership_from_the_command_line(
    env: dict[str, str], conn: psycopg.Connection, keys: KeyRing
) -> None:
    coop = make_world(conn, keys=keys, code="ea-tu").coop
    conn.commit()
    _run(env, "coop", "create", "bmt-export", "--name", "BMT Export")
    shown = json.loads(_run(env, "org", "show", "--org", "ea-tu"))
    assert shown["roles"] == ["producer_group"] and shown["gs1_prefixes"] == ["8930000"]

    out = _run(env, "org", "set-roles", "--org", "bmt-export", "importer", "exporter")
    assert "organisation bmt-export: exporter, importer" in out
    assert "unknown role 'farmer'" in _run(
        env, "org", "set-roles", "--org", "bmt-export", "farmer", code=2
    )
    assert "no organisation" in _run(env, "org", "show", "--org", "nobody", code=2)

    out = _run(env, "partner", "propose", "--org", "ea-tu", "bmt-export")
    partnership = out.strip().splitlines()[-1]
    assert "awaits their answer" in out
    listed = _run(env, "partner", "list", "--org", "bmt-export")
    assert listed.strip() == "\t".join(
        [partnership, "proposed", "ea-tu", "proposed by them", "public_provenance,eudr_geolocation"]
    )
    assert "accepts or declines it" in _run(
        env, "partner", "accept", "--org", "ea-tu", partnership, code=2
    )
    assert "active" in _run(env, "partner", "accept", "--org", "bmt-export", partnership)
    exporter = partners.get(conn, coop["id"], UUID(partnership))["partner"]
    assert exporter["roles"] == ["exporter", "importer"]
    assert "ended" in _run(env, "partner", "end", "--org", "ea-tu", partnership)
    assert "not a partnership id" in _run(env, "partner", "decline", "--org", "ea-tu", "x", code=2)
    assert _run(env, "partner", "list", "--org", "ea-tu", "--status", "active") == ""
    _run(env, "partner", "propose", "--org", "bmt-export", "ea-tu", "--scope", "public_provenance")
    (line,) = _run(env, "partner", "list", "--org", "ea-tu", "--status", "proposed").splitlines()
    assert line.endswith("\tbmt-export\tproposed by them\tpublic_provenance")
    for org in (coop["id"], exporter_id(conn)):
        assert verify_chain(conn, org, keys=keys)["ok"]


def exporter_id(conn: psycopg.Connection) -> UUID:
    return conn.execute("select id from cooperatives where code = 'bmt-export'").fetchone()["id"]
