"""/v1/organisations, /v1/partners and /admin/organisations/{code}/roles against the real
database: each organisation reads and edits only its own profile (admins edit; the GLN's
check digit is verified), the directory shows public profiles only, partnerships go
through their states with the same roles and error format as the rest of the API, a
partnership of others answers 404, and every change is in both chains, which verify."""

from __future__ import annotations

from typing import Any, get_args

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.api import routes_organisations
from coffeetrace.api.auth import create_api_key, create_platform_admin_key
from coffeetrace.trace import cooperatives, organisations, partners
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain
from tests.api.builders import Tenant, make_tenant

GLN = "5901234123457"


@pytest.fixture
def coop(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    tenant = make_tenant(conn, keys=keys, with_lots=False, gtin=None)
    conn.commit()
    return tenant


@pytest.fixture
def exporter(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    return _organisation(conn, keys, "bmt-export", "exporter")


@pytest.fixture
def importer(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    return _organisation(conn, keys, "hh-import", "importer")


@pytest.fixture
def platform(conn: psycopg.Connection) -> dict[str, str]:
    issued = create_platform_admin_key(conn, "test ops")
    conn.commit()
    return {"Authorization": f"Bearer {issued.token}"}


def _organisation(conn: psycopg.Connection, keys: KeyRing, code: str, role: str) -> dict:
    """An organisation of `role` with a key of each role: {"id", "code", "auth": {role:
    headers}}."""
    row = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys, country="VN")
    organisations.set_roles(conn, code, [role])
    auth = {
        r: {"Authorization": f"Bearer {create_api_key(conn, row['id'], r).token}"}
        for r in ("admin", "operator", "read-only")
    }
    conn.commit()
    return {"id": row["id"], "code": code, "auth": auth}


def test_the_api_names_the_domains_roles_and_scopes() -> None:
    assert get_args(routes_organisations.Role) == organisations.ROLES
    assert get_args(routes_organisations.Scope) == partners.SCOPES
    assert get_args(routes_organisations.Status) == partners.STATUSES


def test_each_organisation_reads_and_edits_its_own_profile(
    client: TestClient, coop: Tenant, exporter: dict[str, Any]
) -> None:
    me = client.get("/v1/organisations/me", headers=coop.auth("read-only"))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(coop.coop_id)
    assert me.json()["roles"] == ["producer_group"]
    assert me.json()["gs1_prefixes"] == ["8930000"]
    # operators and readers may not edit it
    for role in ("operator", "read-only"):
        r = client.patch("/v1/organisations/me", json={"gln": GLN}, headers=coop.auth(role))
        assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    r = client.patch(
        "/v1/organisations/me",
        json={"public_name": "Buôn Ma Thuột Exports", "country": "VN", "gln": GLN},
        headers=exporter["auth"]["admin"],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["public_name"], r.json()["gln"]) == ("Buôn Ma Thuột Exports", GLN)
    # the other organisation is untouched
    mine = client.get("/v1/organisations/me", headers=coop.auth()).json()
    assert mine["gln"] is None and mine["public_name"] == mine["name"]
    # a field left out is kept; null removes the GLN
    r = client.patch("/v1/organisations/me", json={"gln": None}, headers=exporter["auth"]["admin"])
    assert (r.json()["public_name"], r.json()["gln"]) == ("Buôn Ma Thuột Exports", None)
    # a GLN another holds is a 409
    client.patch("/v1/organisations/me", json={"gln": GLN}, headers=coop.auth())
    r = client.patch("/v1/organisations/me", json={"gln": GLN}, headers=exporter["auth"]["admin"])
    assert r.status_code == 409 and r.json()["details"]["field"] == "gln", r.text


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"gln": "5901234123458"}, "gln", "wrong check digit"),
        ({"gln": "590123412345"}, "body.gln", ""),
        ({"country": "XK"}, "country", "ISO 3166-1 alpha-2"),
        ({"country": None}, "body.country", ""),
        ({"public_name": " "}, "body.public_name", ""),
        ({"roles": ["exporter"]}, "body.roles", ""),  # the platform admin's, never its own
        ({"name": "Renamed"}, "body.name", ""),
    ],
)
def test_refused_profile_changes(
    client: TestClient, coop: Tenant, body: dict, field: str, reason: str
) -> None:
    r = client.patch("/v1/organisations/me", json=body, headers=coop.auth())
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["error"] == "invalid" and reason in answer["message"]
    problems = [p["field"] for p in answer.get("details", {}).get("problems", [])]
    assert answer["details"].get("field") == field or field in problems, answer
    assert client.get("/v1/organisations/me", headers=coop.auth()).json()["roles"] == [
        "producer_group"
    ]


def test_the_directory_lists_public_profiles_only(
    client: TestClient, coop: Tenant, exporter: dict[str, Any], importer: dict[str, Any]
) -> None:
    client.patch("/v1/organisations/me", json={"gln": GLN}, headers=importer["auth"]["admin"])
    r = client.get("/v1/organisations", headers=coop.auth("read-only"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {o["code"] for o in items} == {coop.world.coop["code"], "bmt-export", "hh-import"}
    assert all(set(o) == {"code", "public_name", "country", "roles", "gln"} for o in items)
    assert str(coop.coop_id) not in r.text and "8930000" not in r.text  # no ids, no prefixes
    only = client.get("/v1/organisations", params={"role": "importer"}, headers=coop.auth())
    assert only.json()["items"] == [
        {
            "code": "hh-import",
            "public_name": "HH-IMPORT",
            "country": "VN",
            "roles": ["importer"],
            "gln": GLN,
        }
    ]
    first = client.get("/v1/organisations", params={"limit": 2}, headers=coop.auth()).json()
    rest = client.get(
        "/v1/organisations", params={"cursor": first["next_cursor"]}, headers=coop.auth()
    ).json()
    assert len(first["items"]) == 2 and [o["code"] for o in rest["items"]] == ["hh-import"]
    assert rest["next_cursor"] is None
    bad = client.get("/v1/organisations", params={"role": "farmer"}, headers=coop.auth())
    assert bad.status_code == 422 and bad.json()["error"] == "invalid"
    assert client.get("/v1/organisations").status_code == 401


def test_a_partnership_from_proposal_to_end(
    client: TestClient,
    conn: psycopg.Connection,
    keys: KeyRing,
    coop: Tenant,
    exporter: dict[str, Any],
) -> None:
    ours, theirs = coop.auth, exporter["auth"]
    for role in ("operator", "read-only"):  # partnerships are the admins'
        r = client.post("/v1/partners", json={"partner": "bmt-export"}, headers=ours(role))
        assert r.status_code == 403, r.text
    r = client.post("/v1/partners", json={"partner": "bmt-export"}, headers=ours())
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert proposal["status"] == "proposed" and proposal["proposed_by_us"] is True
    assert proposal["scopes"] == ["public_provenance", "eudr_geolocation"]
    assert proposal["partner"]["code"] == "bmt-export"
    pid = proposal["id"]
    # both see it, each from its side; readers may list
    listed = client.get("/v1/partners", headers=theirs["read-only"]).json()["items"]
    assert [(p["id"], p["proposed_by_us"]) for p in listed] == [(pid, False)]
    assert listed[0]["partner"]["code"] == coop.world.coop["code"]
    # the proposer cannot accept its own proposal; the invitee does
    r = client.post(f"/v1/partners/{pid}/accept", headers=ours())
    assert r.status_code == 409 and r.json()["error"] == "conflict", r.text
    assert client.post(f"/v1/partners/{pid}/accept", headers=theirs["operator"]).status_code == 403
    r = client.post(f"/v1/partners/{pid}/accept", headers=theirs["admin"])
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    assert partners.are_partners(conn, coop.coop_id, exporter["id"])
    r = client.post("/v1/partners", json={"partner": "bmt-export"}, headers=ours())
    assert r.status_code == 409 and r.json()["details"]["partnership_id"] == pid
    got = client.get(f"/v1/partners/{pid}", headers=ours("read-only")).json()
    assert got["status"] == "active" and got["accepted_at"] is not None
    # either ends it
    r = client.post(f"/v1/partners/{pid}/end", headers=theirs["admin"])
    assert r.status_code == 200 and r.json()["ended_by"] == "bmt-export", r.text
    assert not partners.are_partners(conn, coop.coop_id, exporter["id"])
    r = client.post(f"/v1/partners/{pid}/decline", headers=theirs["admin"])
    assert r.status_code == 409 and "ended" in r.json()["message"]
    active = client.get("/v1/partners", params={"status": "active"}, headers=ours()).json()
    assert active == {"items": [], "next_cursor": None}
    # every change in both chains, which verify
    for org in (coop.coop_id, exporter["id"]):
        kinds = conn.execute(
            "select kind from trace_events where cooperative_id = %s"
            " and kind like 'partnership_%%' order by seq",
            (org,),
        ).fetchall()
        assert [k["kind"] for k in kinds] == [
            "partnership_proposed",
            "partnership_accepted",
            "partnership_ended",
        ]
        report = verify_chain(conn, org, keys=keys)
        assert report["ok"], report["problems"]


def test_a_partnership_of_others_answers_404(
    client: TestClient, coop: Tenant, exporter: dict[str, Any], importer: dict[str, Any]
) -> None:
    pid = client.post("/v1/partners", json={"partner": "bmt-export"}, headers=coop.auth()).json()[
        "id"
    ]
    outsider = importer["auth"]["admin"]
    r = client.get(f"/v1/partners/{pid}", headers=outsider)
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    for action in ("accept", "decline", "end"):
        r = client.post(f"/v1/partners/{pid}/{action}", headers=outsider)
        assert r.status_code == 404, (action, r.text)
        assert coop.world.coop["code"] not in r.text and "bmt-export" not in r.text
    assert client.get("/v1/partners", headers=outsider).json()["items"] == []
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/v1/partners/{unknown}", headers=coop.auth()).status_code == 404
    assert client.get("/v1/partners/not-a-uuid", headers=coop.auth()).status_code == 422
    # the invitee declines; the proposal was answered, not ended by someone else
    r = client.post(f"/v1/partners/{pid}/decline", headers=exporter["auth"]["admin"])
    assert r.status_code == 200 and r.json()["status"] == "declined", r.text


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"partner": "nobody"}, 404, "not_found"),
        ({"partner": "Not A Code"}, 422, "invalid"),
        ({"partner": "bmt-export", "scopes": []}, 422, "invalid"),
        ({"partner": "bmt-export", "scopes": ["farm_private"]}, 422, "invalid"),
        ({"partner": "bmt-export", "scopes": ["eudr_geolocation"] * 2}, 422, "invalid"),
        ({"partner": "bmt-export", "role": "admin"}, 422, "invalid"),
    ],
)
def test_refused_proposals(
    client: TestClient,
    coop: Tenant,
    exporter: dict[str, Any],
    body: dict,
    status: int,
    expected: str,
) -> None:
    r = client.post("/v1/partners", json=body, headers=coop.auth())
    assert r.status_code == status and r.json()["error"] == expected, r.text


def test_an_organisation_is_not_its_own_partner(client: TestClient, coop: Tenant) -> None:
    own = coop.world.coop["code"]
    r = client.post("/v1/partners", json={"partner": own}, headers=coop.auth())
    assert r.status_code == 422 and r.json()["details"]["rule"] == "partner_self", r.text


def test_the_platform_admin_sets_roles_and_roles_hold(
    client: TestClient, platform: dict[str, str], coop: Tenant, exporter: dict[str, Any]
) -> None:
    url = "/admin/organisations/bmt-export/roles"
    for headers in (exporter["auth"]["admin"], coop.auth()):  # no organisation's own key
        r = client.put(url, json={"roles": ["exporter", "importer"]}, headers=headers)
        assert r.status_code == 403 and "platform-admin key" in r.json()["message"], r.text
    assert client.put(url, json={"roles": ["exporter"]}).status_code == 401
    r = client.put(url, json={"roles": ["importer", "exporter"]}, headers=platform)
    assert r.status_code == 200 and r.json()["roles"] == ["exporter", "importer"], r.text
    assert (
        client.put(
            "/admin/organisations/nobody/roles", json={"roles": ["exporter"]}, headers=platform
        ).status_code
        == 404
    )
    for bad in ([], ["farmer"], ["exporter", "exporter"]):
        assert client.put(url, json={"roles": bad}, headers=platform).status_code == 422
    # only a producer group registers farms
    r = client.post("/v1/farms", json={"code": "F-X"}, headers=exporter["auth"]["operator"])
    assert r.status_code == 422 and r.json()["details"]["rule"] == "role_required", r.text
    assert "only a producer_group organisation may register farms" in r.json()["message"]
    r = client.post("/v1/farms", json={"code": "F-Y"}, headers=coop.auth("operator"))
    assert r.status_code == 201, r.text
    # and one with farms keeps that role
    code = coop.world.coop["code"]
    r = client.put(
        f"/admin/organisations/{code}/roles", json={"roles": ["exporter"]}, headers=platform
    )
    assert r.status_code == 422 and r.json()["details"]["rule"] == "roles_in_use", r.text


def test_every_status_is_documented(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    expected = {
        ("get", "/v1/organisations/me"): {"200", "401", "503"},
        ("patch", "/v1/organisations/me"): {"200", "401", "403", "409", "413", "422", "503"},
        ("get", "/v1/organisations"): {"200", "401", "422", "503"},
        ("get", "/v1/partners"): {"200", "401", "422", "503"},
        ("post", "/v1/partners"): {"201", "401", "403", "404", "409", "413", "422", "503"},
        ("get", "/v1/partners/{partnership_id}"): {"200", "401", "404", "422", "503"},
        ("put", "/admin/organisations/{code}/roles"): {
            "200",
            "401",
            "403",
            "404",
            "409",
            "413",
            "422",
            "503",
        },
    }
    for action in ("accept", "decline", "end"):
        expected[("post", f"/v1/partners/{{partnership_id}}/{action}")] = {
            "200",
            "401",
            "403",
            "404",
            "409",
            "422",
            "503",
        }
    for (method, path), statuses in expected.items():
        assert set(paths[path][method]["responses"]) == statuses, (method, path)
