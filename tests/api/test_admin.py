"""The platform admin API (/admin/...) against the real database: a cooperative is created
with its GS1 company prefixes and its signing key, onboarded with its first API key, and
its prefixes changed; only a platform-admin key opens it (a cooperative's key gets 403)."""

from __future__ import annotations

import re

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.api.auth import create_platform_admin_key, revoke_platform_admin_key
from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant

P1, P2, P3 = "8936051", "8936052", "8937003"


@pytest.fixture
def platform(conn: psycopg.Connection) -> dict[str, str]:
    issued = create_platform_admin_key(conn, "test ops")
    conn.commit()
    assert issued.token.startswith("cta_")
    return {"Authorization": f"Bearer {issued.token}"}


def _create(client: TestClient, headers: dict[str, str], code: str, *prefixes: str) -> dict:
    r = client.post(
        "/admin/cooperatives",
        json={"code": code, "name": f"HTX {code}", "gs1_prefixes": list(prefixes)},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_cooperative_is_created_and_onboarded(
    client: TestClient, platform: dict[str, str], keys: KeyRing
) -> None:
    coop = _create(client, platform, "ea-tu", P2, P1)
    assert coop["code"] == "ea-tu" and coop["gs1_prefixes"] == [P1, P2]
    # its signing key exists already and is published
    assert [k["key_id"] for k in keys.public_keys(coop["id"])] == [coop["signing_key_id"]]
    published = client.get("/.well-known/coffeetrace-keys").json()["cooperatives"]
    (entry,) = [c for c in published if c["code"] == "ea-tu"]
    assert entry["keys"][0]["key_id"] == coop["signing_key_id"]
    # its first admin key, then its own API: GTINs from either prefix, none from elsewhere
    r = client.post(
        "/admin/cooperatives/ea-tu/api-keys",
        json={"role": "admin", "name": "first admin"},
        headers=platform,
    )
    assert r.status_code == 201, r.text
    own = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/v1/me", headers=own).json()["cooperative_code"] == "ea-tu"
    for gtin in (gtin14(P1, 1), gtin14(P2, 2, indicator=1)):
        made = client.post("/v1/products", json={"name": gtin, "gtin": gtin}, headers=own)
        assert made.status_code == 201, made.text
    refused = client.post("/v1/products", json={"name": "x", "gtin": gtin14(P3, 3)}, headers=own)
    assert refused.status_code == 422 and refused.json()["details"]["rule"] == "gtin_prefix"
    assert f"{P1}, {P2}" in refused.json()["message"]
    got = client.get("/admin/cooperatives/ea-tu", headers=platform).json()
    assert got["id"] == coop["id"] and got["gs1_prefixes"] == [P1, P2]


def test_prefixes_are_added_and_removed(
    client: TestClient, platform: dict[str, str], tenant_a: Tenant
) -> None:
    _create(client, platform, "ea-tu", P1)
    own = client.post(
        "/admin/cooperatives/ea-tu/api-keys", json={"role": "operator"}, headers=platform
    ).json()["token"]
    own_headers = {"X-API-Key": own}
    url = "/admin/cooperatives/ea-tu/gs1-prefixes"
    r = client.post(url, json={"prefix": P3}, headers=platform)
    assert r.status_code == 201 and r.json()["gs1_prefixes"] == [P1, P3]
    gtin = gtin14(P3, 9)
    assert client.post("/v1/products", json={"name": "P", "gtin": gtin}, headers=own_headers)
    for prefix, status, reason in (
        (P3, 409, "already held by this cooperative"),
        (P3 + "1", 409, f"overlaps {P3}, held by this cooperative"),
        # tenant_a (a test factory's cooperative) holds 8930000
        ("893000", 409, f"held by cooperative {tenant_a.world.coop['code']}"),
        ("12", 422, "body.prefix: String should match pattern"),
        ("2001234", 422, "Restricted Circulation"),
    ):
        r = client.post(url, json={"prefix": prefix}, headers=platform)
        assert r.status_code == status and reason in r.json()["message"], (prefix, r.text)
    r = client.delete(f"{url}/{P3}", headers=platform)
    assert r.status_code == 200 and r.json()["gs1_prefixes"] == [P1]
    again = {"name": "P2", "gtin": gtin14(P3, 8)}
    assert client.post("/v1/products", json=again, headers=own_headers).status_code == 422
    r = client.delete(f"{url}/{P3}", headers=platform)
    assert r.status_code == 404 and "holds no GS1 company prefix" in r.json()["message"]
    assert (
        client.post(
            "/admin/cooperatives/nope/gs1-prefixes", json={"prefix": P2}, headers=platform
        ).status_code
        == 404
    )


def test_list_pages_by_code(
    client: TestClient, platform: dict[str, str], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    for code in ("coop-c", "coop-a", "coop-b"):
        _create(client, platform, code)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/admin/cooperatives", params=params, headers=platform).json()
        seen += [c["code"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = {
        "coop-a",
        "coop-b",
        "coop-c",
        tenant_a.world.coop["code"],
        tenant_b.world.coop["code"],
    }
    assert seen == sorted(expected)
    assert client.get("/admin/cooperatives/nope", headers=platform).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"code": "Ea Tu", "name": "X"}, 422, "body.code: String should match pattern"),
        ({"code": "ea-tu", "name": " "}, 422, "body.name: String should match pattern"),
        ({"code": "ea-tu", "name": "X", "country": "Vietnam"}, 422, "body.country"),
        ({"code": "ea-tu", "name": "X", "gs1_prefixes": ["89a6051"]}, 422, "body.gs1_prefixes.0"),
        ({"code": "ea-tu", "name": "X", "gs1_prefixes": ["9781234"]}, 422, "ISBN"),
        ({"code": "ea-tu", "name": "X", "province": "a\x00b"}, 422, "body.province"),
        ({"code": "ea-tu", "name": "X", "gs1_prefixes": [P1, P1 + "2"]}, 409, "overlap"),
        ({"code": "ea-tu", "name": "X", "gs1_prefixes": [P1] * 21}, 422, "at most 20"),
        ({"code": "ea-tu", "name": "X", "owner": "me"}, 422, "Extra inputs"),
        ({"name": "X"}, 422, "body.code: Field required"),
    ],
)
def test_bad_cooperatives_are_refused_with_a_reason(
    client: TestClient,
    platform: dict[str, str],
    keys: KeyRing,
    body: dict,
    status: int,
    reason: str,
) -> None:
    r = client.post("/admin/cooperatives", json=body, headers=platform)
    assert r.status_code == status and reason in r.json()["message"], r.text
    assert client.get("/admin/cooperatives/ea-tu", headers=platform).status_code == 404
    assert not keys.root.exists() or not any(keys.root.iterdir())


def test_a_code_is_taken_once(client: TestClient, platform: dict[str, str]) -> None:
    _create(client, platform, "ea-tu")
    r = client.post("/admin/cooperatives", json={"code": "ea-tu", "name": "Y"}, headers=platform)
    assert r.status_code == 409 and "already exists" in r.json()["message"]


def _admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), re.sub(r"\{(\w+)\}", lambda m: {"code": "ea-tu"}.get(m[1], P1), path))
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/admin/")
        for method in ops
    )


def test_only_a_platform_admin_key_opens_the_admin_api(
    app: FastAPI,
    client: TestClient,
    conn: psycopg.Connection,
    platform: dict[str, str],
    tenant_a: Tenant,
) -> None:
    _create(client, platform, "ea-tu", P1)
    routes = _admin_routes(app)
    assert len(routes) == 7, routes
    bodies = {"POST": {"code": "x-y", "name": "X", "prefix": P2, "role": "admin"}}
    for method, path in routes:
        for role in ("admin", "operator", "read-only"):  # every role of a cooperative key
            r = client.request(method, path, json=bodies.get(method), headers=tenant_a.auth(role))
            assert r.status_code == 403, (method, path, role, r.text)
            assert "platform-admin key" in r.json()["message"]
        for headers in ({}, {"Authorization": "Bearer cta_0000_unknown"}, {"X-API-Key": "x"}):
            r = client.request(method, path, json=bodies.get(method), headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
    # nothing was changed by the refused requests
    assert client.get("/admin/cooperatives/ea-tu", headers=platform).json()["gs1_prefixes"] == [P1]
    assert client.get("/admin/cooperatives/x-y", headers=platform).status_code == 404
    # the platform key is no cooperative's key, and works as X-API-Key too
    assert client.get("/v1/me", headers=platform).status_code == 401
    token = platform["Authorization"].removeprefix("Bearer ")
    assert client.get("/admin/cooperatives", headers={"X-API-Key": token}).status_code == 200
    # a revoked platform key stops at once
    key_id = conn.execute("select id from platform_admin_keys").fetchone()["id"]
    assert revoke_platform_admin_key(conn, key_id)["revoked_at"] is not None
    conn.commit()
    assert client.get("/admin/cooperatives", headers=platform).status_code == 401


def test_every_status_is_documented(app: FastAPI) -> None:
    spec = app.openapi()
    for path, ops in spec["paths"].items():
        if path.startswith("/admin/"):
            for method, op in ops.items():
                assert {"401", "403", "404", "409", "422"} <= set(op["responses"]), (method, path)
                assert {"PlatformAdminBearer", "PlatformAdminKey"} == {
                    name for s in op["security"] for name in s
                }, (method, path)
