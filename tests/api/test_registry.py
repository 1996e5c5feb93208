"""Cooperative API: keys and roles, registry endpoints, pagination, one error format."""

from __future__ import annotations

import hashlib

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.credentials import verify_mosquitto_hash
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant
from tests.factories import square


def test_requests_without_a_valid_key_are_refused(client: TestClient, tenant_a: Tenant) -> None:
    for headers in ({}, {"Authorization": "Bearer ct_nope_nope"}, {"X-API-Key": "wrong"}):
        r = client.get("/v1/farms", headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["error"] == "unauthorized" and "API key" in body["message"]
    assert (
        client.get("/v1/me", headers={"X-API-Key": tenant_a.keys["operator"]}).json()["role"]
        == "operator"
    )


def test_keys_are_stored_as_sha256_only(conn: psycopg.Connection, tenant_a: Tenant) -> None:
    token = tenant_a.keys["admin"]
    rows = conn.execute("select token_hash, prefix from api_keys").fetchall()
    assert {r["token_hash"] for r in rows} >= {hashlib.sha256(token.encode()).hexdigest()}
    dump = str(conn.execute("select * from api_keys").fetchall())
    secret = token.split("_", 2)[2]  # ct_{prefix}_{secret}; the secret may hold "_" itself
    assert token not in dump and secret not in dump


def test_roles(client: TestClient, tenant_a: Tenant) -> None:
    farm = {"code": "F-NEW", "private": {"owner_name": "Trần Thị B", "phone": "+84987654321"}}
    r = client.post("/v1/farms", json=farm, headers=tenant_a.auth("read-only"))
    assert r.status_code == 403 and "operator" in r.json()["message"]
    r = client.post("/v1/farms", json=farm, headers=tenant_a.auth("operator"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert "private" not in created and "Trần" not in r.text and "phone" not in r.text
    # personal data: operators write it but cannot read it; admins read it
    r = client.get(f"/v1/farms/{created['id']}/private", headers=tenant_a.auth("operator"))
    assert r.status_code == 403
    r = client.get(f"/v1/farms/{created['id']}/private", headers=tenant_a.auth("admin"))
    assert r.status_code == 200 and r.json()["owner_name"] == "Trần Thị B"
    r = client.put(
        f"/v1/farms/{created['id']}/private",
        headers=tenant_a.auth("operator"),
        json={"owner_name": "Trần Thị C", "data_consent": True},
    )
    assert r.status_code == 204
    r = client.get(f"/v1/farms/{created['id']}/private", headers=tenant_a.auth("admin"))
    assert r.json()["owner_name"] == "Trần Thị C" and r.json()["phone"] is None
    # API keys: admins only
    assert client.get("/v1/api-keys", headers=tenant_a.auth("operator")).status_code == 403
    keys = client.get("/v1/api-keys", headers=tenant_a.auth("admin")).json()["items"]
    assert {k["role"] for k in keys} == {"admin", "operator", "read-only"}


def test_registry_round_trip(client: TestClient, tenant_a: Tenant) -> None:
    op = tenant_a.auth("operator")
    farm = client.post(
        "/v1/farms", json={"code": "F-77", "district": "Cư M'gar"}, headers=op
    ).json()
    plot = client.post(
        "/v1/plots",
        headers=op,
        json={
            "farm_id": farm["id"],
            "code": "P-77",
            "geometry": square(108.2, 12.7),
            "area_ha": 1.2,
            "altitude_m": 520,
        },
    )
    assert plot.status_code == 201, plot.text
    plot_id = plot.json()["id"]
    tree = client.post(
        "/v1/trees",
        headers=op,
        json={
            "plot_id": plot_id,
            "tag_code": "T-77-1",
            "cultivar": "TR9",
            "planted_on": "2015-05-01",
        },
    )
    assert tree.status_code == 201, tree.text
    public_id = tree.json()["public_id"]
    assert len(public_id) == 26
    got = client.get(f"/v1/trees/{tree.json()['id']}", headers=tenant_a.auth("read-only")).json()
    assert got["cultivar"] == "TR9" and got["plot_id"] == plot_id
    # duplicate tag -> 409 in the one error format
    dup = client.post("/v1/trees", headers=op, json={"plot_id": plot_id, "tag_code": "T-77-1"})
    assert dup.status_code == 409 and dup.json()["error"] == "conflict"
    # bad geometry -> 422 with a reason
    bad = client.post(
        "/v1/plots",
        headers=op,
        json={
            "farm_id": farm["id"],
            "code": "P-78",
            "area_ha": 1,
            "geometry": {"type": "Polygon", "coordinates": [[[108, 12], [108.1, 12], [108, 12.1]]]},
        },
    )
    assert bad.status_code == 422 and bad.json()["message"]
    missing = client.post("/v1/trees", headers=op, json={"tag_code": "x"})
    assert missing.status_code == 422
    assert missing.json()["error"] == "invalid" and "plot_id" in missing.json()["message"]


def test_device_secret_is_returned_once(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    op = tenant_a.auth("operator")
    r = client.post(
        "/v1/devices",
        headers=op,
        json={"kind": "soil_node", "plot_id": str(tenant_a.world.plot["id"])},
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    password = issued["mqtt_password"]
    assert issued["mqtt_username"] == issued["device"]["id"] and len(password) >= 20
    stored = conn.execute(
        "select credential_hash from devices where id = %s", (issued["device"]["id"],)
    ).fetchone()["credential_hash"]
    assert stored != password and verify_mosquitto_hash(password, stored)
    again = client.get(f"/v1/devices/{issued['device']['id']}", headers=op)
    assert again.status_code == 200 and password not in again.text
    listed = client.get("/v1/devices", headers=op, params={"kind": "soil_node"})
    assert password not in listed.text
    assert {d["kind"] for d in listed.json()["items"]} == {"soil_node"}
    rotated = client.post(f"/v1/devices/{issued['device']['id']}/credential", headers=op).json()
    assert rotated["mqtt_password"] != password
    soil_without_plot = client.post("/v1/devices", headers=op, json={"kind": "soil_node"})
    assert soil_without_plot.status_code == 422 and "plot" in soil_without_plot.json()["message"]


def test_device_ids_are_per_cooperative(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    def register(tenant: Tenant, device_id: str) -> tuple[int, dict]:
        r = client.post(
            "/v1/devices",
            headers=tenant.auth("operator"),
            json={"kind": "harvest_scale", "device_id": device_id},
        )
        return r.status_code, r.json()

    status_a, a = register(tenant_a, "scale-01")
    status_b, b = register(tenant_b, "scale-01")  # the same own id: no conflict, nothing told
    assert (status_a, status_b) == (201, 201), (a, b)
    code_a, code_b = tenant_a.world.coop["code"], tenant_b.world.coop["code"]
    assert a["device"]["id"] == a["mqtt_username"] == f"{code_a}.scale-01"
    assert b["device"]["id"] == f"{code_b}.scale-01"
    status, again = register(tenant_a, "scale-01")  # a conflict names only A's own device
    assert status == 409 and code_b not in str(again), again
    # the own id and the whole id both name the device; another cooperative's whole id is
    # not the caller's: 404 through the path, 422 when registering it
    op_a = tenant_a.auth("operator")
    for name in ("scale-01", f"{code_a}.scale-01"):
        got = client.get(f"/v1/devices/{name}", headers=op_a)
        assert got.status_code == 200 and got.json()["id"] == f"{code_a}.scale-01"
    assert client.get(f"/v1/devices/{code_b}.scale-01", headers=op_a).status_code == 404
    status, refused = register(tenant_a, f"{code_b}.scale-02")
    assert status == 422 and refused["details"]["field"] == "device_id", refused
    off = client.post("/v1/devices/scale-01/disable", headers=op_a)
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get(f"/v1/devices/{code_b}.scale-01", headers=tenant_b.auth()).json()["active"]


def test_pagination_and_filters(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    tenant = make_tenant(conn, keys=keys, trees=23, with_lots=False)
    ro = tenant.auth("read-only")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/trees", headers=ro, params=params).json()
        seen += [t["id"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 23 == len(set(seen))
    one = client.get("/v1/trees", headers=ro, params={"tag_code": "T-00007"}).json()["items"]
    assert [t["tag_code"] for t in one] == ["T-00007"]
    none = client.get("/v1/trees", headers=ro, params={"cultivar": "nope"}).json()
    assert none == {"items": [], "next_cursor": None}
    bad = client.get("/v1/trees", headers=ro, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and "cursor" in bad.json()["message"]
    assert client.get("/v1/trees", headers=ro, params={"limit": 0}).status_code == 422


def test_unknown_route_uses_the_error_format(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_failed_request_leaves_nothing_behind(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    """The request's transaction is rolled back: the farm row written before the failing
    personal-data row is gone too."""
    r = client.post(
        "/v1/farms",
        headers=tenant_a.auth("operator"),
        json={"code": "F-ROLLBACK", "private": {"phone": "09\u0000"}},
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid"
    assert (
        conn.execute("select count(*) as n from farms where code = 'F-ROLLBACK'").fetchone()["n"]
        == 0
    )


def test_lots_and_steps_through_the_api(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    tenant = make_tenant(conn, keys=keys, with_lots=False)
    from datetime import UTC, datetime

    from tests.api.builders import add_harvests

    add_harvests(conn, tenant.world, start=datetime(2025, 11, 20, 7, tzinfo=UTC))
    conn.commit()
    op = tenant.auth("operator")
    lot = client.post(
        "/v1/lots", headers=op, json={"code": "C-API-1", "plot_ids": [str(tenant.world.plot["id"])]}
    )
    assert lot.status_code == 201, lot.text
    cherry = lot.json()
    assert cherry["kind"] == "cherry" and cherry["quantity_kg"] > 0
    again = client.post(
        "/v1/lots", headers=op, json={"code": "C-API-2", "plot_ids": [str(tenant.world.plot["id"])]}
    )
    assert again.status_code == 422 and again.json()["details"]["rule"] == "no_harvests"
    too_much = client.post(
        "/v1/transformations",
        headers=op,
        json={
            "step": "drying",
            "occurred_at": "2025-12-01T08:00:00+07:00",
            "inputs": [{"lot_id": cherry["id"], "kg": cherry["quantity_kg"]}],
            "outputs": [{"code": "D-API-1", "kg": cherry["quantity_kg"], "kind": "dried_cherry"}],
        },
    )
    assert too_much.status_code == 422 and too_much.json()["details"]["rule"] == "mass_balance"
    step = client.post(
        "/v1/transformations",
        headers=op,
        json={
            "step": "drying",
            "occurred_at": "2025-12-01T08:00:00+07:00",
            "inputs": [{"lot_id": cherry["id"], "kg": cherry["quantity_kg"]}],
            "outputs": [
                {
                    "code": "D-API-1",
                    "kg": round(cherry["quantity_kg"] * 0.5, 3),
                    "kind": "dried_cherry",
                }
            ],
            "measurements": {"moisture_pct": 12.0},
        },
    )
    assert step.status_code == 201, step.text
    dried = step.json()["outputs"][0]
    listed = client.get("/v1/lots", headers=op, params={"kind": "dried_cherry"}).json()["items"]
    assert [x["code"] for x in listed] == ["D-API-1"]
    assert client.get(f"/v1/lots/{cherry['id']}", headers=op).json()["remaining_kg"] == 0
    steps = client.get("/v1/transformations", headers=op, params={"lot_id": cherry["id"]}).json()
    assert [s["step"] for s in steps["items"]] == ["drying"]
    back = client.get(f"/v1/lots/{dried['id']}/trace", headers=op).json()
    assert len(back["trees"]) == len(tenant.world.trees)
    assert abs(sum(t["share"] for t in back["trees"]) - 1) < 1e-6
    forward = client.get(
        "/v1/trace/forward", headers=op, params={"tree_id": str(tenant.world.trees[0]["id"])}
    ).json()
    assert {x["code"] for x in forward["lots"]} >= {"C-API-1", "D-API-1"}
    assert client.get(f"/v1/lots/{dried['id']}/verify", headers=op).json()["ok"] is True
    eudr = client.get(f"/v1/lots/{dried['id']}/eudr", headers=op)
    assert eudr.headers["content-type"] == "application/geo+json"
    assert eudr.json()["type"] == "FeatureCollection"
    epcis = client.get(f"/v1/lots/{dried['id']}/epcis", headers=op)
    assert epcis.headers["content-type"] == "application/ld+json"
    assert epcis.json()["type"] == "EPCISDocument"
    both = client.get(
        "/v1/trace/forward",
        headers=op,
        params={"tree_id": str(tenant.world.trees[0]["id"]), "lot_id": cherry["id"]},
    )
    assert both.status_code == 422 and "exactly one" in both.json()["message"]
