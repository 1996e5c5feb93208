"""Console screens for admins over HTTP: API keys issued (token shown once, working
against the API) and revoked through the API's handlers; the flags list."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.settings import Settings
from tests.api.builders import Tenant
from tests.api.console_helpers import csrf_of, login, make_user

TOKEN = re.compile(r'id="new-token">(ct_[A-Za-z0-9_-]+)<')


def test_admin_issues_and_revokes_an_api_key(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    tenant_b: Tenant,
    settings: Settings,
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "admin", settings))
    page = client.get("/console/keys")
    assert page.status_code == 200
    issued = client.post(
        "/console/keys", data={"csrf": csrf_of(page.text), "role": "read-only", "name": "scale"}
    )
    assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
    token = TOKEN.search(issued.text).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/lots", headers=headers).status_code == 200
    assert token not in client.get("/console/keys").text  # shown once
    bad = client.post("/console/keys", data={"csrf": csrf_of(page.text), "role": "root"})
    assert bad.status_code == 422 and "role" in bad.text
    key_id = conn.execute("select id from api_keys where name = 'scale'").fetchone()["id"]
    gone = client.post(
        f"/console/keys/{key_id}/revoke", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert client.get("/v1/lots", headers=headers).status_code == 401
    theirs = conn.execute(
        "select id from api_keys where cooperative_id = %s limit 1", (tenant_b.coop_id,)
    ).fetchone()["id"]
    other = client.post(f"/console/keys/{theirs}/revoke", data={"csrf": csrf_of(page.text)})
    assert other.status_code == 404
    assert (
        conn.execute("select revoked_at from api_keys where id = %s", (theirs,)).fetchone()[
            "revoked_at"
        ]
        is None
    )


def test_keys_are_for_admins_and_flags_for_all(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    tenant_b: Tenant,
    settings: Settings,
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "operator", settings))
    assert client.get("/console/keys").status_code == 403
    token = csrf_of(client.get("/console/flags").text)
    theirs = conn.execute(
        "select id from api_keys where cooperative_id = %s limit 1", (tenant_b.coop_id,)
    ).fetchone()["id"]
    assert client.post(f"/console/keys/{theirs}/revoke", data={"csrf": token}).status_code == 403
    conn.execute(
        "insert into plausibility_flags (cooperative_id, kind, tree_id, season, details)"
        " values (%s, 'tree_season_yield', %s, 2025, '{\"season_cherry_kg\": 95}')",
        (tenant_a.coop_id, tenant_a.world.trees[0]["id"]),
    )
    conn.commit()
    flags = client.get("/console/flags")
    assert flags.status_code == 200
    assert tenant_a.world.trees[0]["tag_code"] in flags.text and "quá cao" in flags.text
    assert "quá cao" in client.get("/console/").text
