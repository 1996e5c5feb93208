"""GET /v1/harvests: the clerk's list to choose a cherry lot's harvest_ids from, against the
real database: filters, what is left of each harvest (as the domain counts it), keyset
pages, tenant isolation, and 422s that say what to fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.trace import lots
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, add_harvests

ROUND_2 = datetime(2025, 12, 1, 7, 0, tzinfo=UTC)  # make_tenant's harvests are in November


@pytest.fixture
def season(conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant) -> dict[str, Any]:
    """tenant_a's 5 November harvests, all in its cherry lot; 10 December ones (two per
    tree at the same minutes, so pages must break ties by id), one of them a lot took
    1.5 kg of."""
    add_harvests(conn, tenant_a.world, start=ROUND_2, keys=keys)
    add_harvests(conn, tenant_a.world, start=ROUND_2, keys=keys)
    partial = conn.execute(
        "select id from harvest_events where time >= %s order by time, id limit 1", (ROUND_2,)
    ).fetchone()["id"]
    lot = lots.build_cherry_lot(
        conn,
        tenant_a.coop_id,
        code="C-PART",
        harvest_ids=[partial],
        harvest_kg={partial: 1.5},
        keys=keys,
    )
    conn.commit()
    return {"partial": partial, "lot": lot}


def _all(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    r = client.get(
        "/v1/harvests", params={"limit": 500, **params}, headers=tenant.auth("read-only")
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]


def test_filters_and_what_is_left(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, season: dict[str, Any]
) -> None:
    world = tenant_a.world
    everything = _all(client, tenant_a)
    assert len(everything) == 15
    keys = [(h["time"], h["id"]) for h in everything]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 15  # newest first
    h = everything[0]
    assert h["plot_id"] == str(world.plot["id"]) and h["plot_code"] == world.plot["code"]
    assert h["farm_id"] == str(world.farm["id"]) and h["farm_code"] == world.farm["code"]
    assert h["device_id"] == world.devices["scale"].username
    assert {t["tag_code"] for t in world.trees} >= {x["tree_tag"] for x in everything}
    # what is left, as the domain counts it for POST /v1/lots
    remaining = lots.harvest_remaining(conn, tenant_a.coop_id, [x["id"] for x in everything])
    assert {str(k): float(v) for k, v in remaining.items()} == {
        x["id"]: x["remaining_kg"] for x in everything
    }
    for x in everything:
        assert x["assigned_kg"] + x["remaining_kg"] == pytest.approx(x["cherry_kg"])

    unassigned = _all(client, tenant_a, unassigned="true")
    assert len(unassigned) == 10 and all(x["time"] >= ROUND_2.isoformat()[:10] for x in unassigned)
    (part,) = [x for x in unassigned if x["id"] == str(season["partial"])]
    assert part["assigned_kg"] == 1.5 and part["remaining_kg"] == part["cherry_kg"] - 1.5
    assert part["lots"] == [{"lot_id": str(season["lot"]["id"]), "code": "C-PART", "kg": 1.5}]
    assert all(x["lots"] == [] for x in unassigned if x is not part)
    wholly = _all(client, tenant_a, unassigned="false")
    assert len(wholly) == 5 and all(x["remaining_kg"] == 0 for x in wholly)
    assert {x["lots"][0]["code"] for x in wholly} == {tenant_a.cherry["code"]}

    tree = world.trees[0]
    assert {x["tree_id"] for x in _all(client, tenant_a, tree_id=str(tree["id"]))} == {
        str(tree["id"])
    }
    assert len(_all(client, tenant_a, tree_id=str(tree["id"]))) == 3
    assert len(_all(client, tenant_a, plot_id=str(world.plot["id"]))) == 15
    assert len(_all(client, tenant_a, farm_id=str(world.farm["id"]))) == 15
    assert len(_all(client, tenant_a, device_id=world.devices["scale"].username)) == 15
    assert _all(client, tenant_a, device_id=world.devices["soil"].username) == []
    # the period is [from, to), times with their zone
    assert len(_all(client, tenant_a, **{"from": "2025-12-01T14:00:00+07:00"})) == 10
    assert len(_all(client, tenant_a, to="2025-12-01T07:00:00Z")) == 5
    first_minute = {"from": "2025-12-01T07:01:00Z", "to": "2025-12-01T07:02:00Z"}
    assert len(_all(client, tenant_a, **first_minute)) == 2
    combined = _all(client, tenant_a, unassigned="true", tree_id=str(tree["id"]), **first_minute)
    assert [x["tree_id"] for x in combined] == [str(tree["id"])] * 2


def test_pages_walk_every_harvest_once(
    client: TestClient, tenant_a: Tenant, season: dict[str, Any]
) -> None:
    for params, total in (({}, 15), ({"unassigned": "true"}, 10)):
        seen: list[tuple[str, str]] = []
        cursor = None
        pages = 0
        while True:
            query = {"limit": 4, **params, **({"cursor": cursor} if cursor else {})}
            r = client.get("/v1/harvests", params=query, headers=tenant_a.auth("read-only"))
            assert r.status_code == 200, r.text
            body = r.json()
            seen += [(h["time"], h["id"]) for h in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == total and len(set(seen)) == total
        assert seen == sorted(seen, reverse=True)
        assert pages == -(-total // 4)


def test_a_clerk_builds_a_lot_from_the_list(
    client: TestClient, tenant_a: Tenant, season: dict[str, Any]
) -> None:
    chosen = _all(client, tenant_a, unassigned="true")
    left = sum(h["remaining_kg"] for h in chosen)
    r = client.post(
        "/v1/lots",
        json={"code": "C-DEC", "harvest_ids": [h["id"] for h in chosen]},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["quantity_kg"] == pytest.approx(left)  # the partial one gave what was left
    assert _all(client, tenant_a, unassigned="true") == []
    assert len(_all(client, tenant_a, unassigned="false")) == 15


def test_a_cooperative_never_sees_anothers_harvests(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant, season: dict[str, Any]
) -> None:
    mine = {h["id"] for h in _all(client, tenant_a)}
    theirs = {h["id"] for h in _all(client, tenant_b)}
    assert len(theirs) == 5 and not mine & theirs
    world = tenant_a.world
    for name, value in (
        ("plot_id", str(world.plot["id"])),
        ("tree_id", str(world.trees[0]["id"])),
        ("farm_id", str(world.farm["id"])),
        ("device_id", world.devices["scale"].username),
    ):
        r = client.get("/v1/harvests", params={name: value}, headers=tenant_b.auth("admin"))
        assert r.status_code == 404, (name, r.text)
        assert r.json()["error"] == "not_found" and world.plot["code"] not in r.text
    assert client.get("/v1/harvests").status_code == 401
    bad = {"Authorization": "Bearer ct_nope_nope"}
    assert client.get("/v1/harvests", headers=bad).status_code == 401


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"from": "2025-12-01T00:00:00"}, "from", "time zone"),
        ({"to": "2025-12-01T00:00:00"}, "to", "time zone"),
        ({"to": "2025-12-01"}, "query.to", "RFC 3339"),
        ({"from": "2025-12-02T00:00:00Z", "to": "2025-12-01T00:00:00Z"}, "from", "before to"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-12-01T00:00:00Z"}, "from", "before to"),
        ({"from": "last week"}, "query.from", "RFC 3339"),
        ({"cursor": "abc"}, "query.cursor", "should match pattern"),
        ({"cursor": "1_not-a-uuid-at-all-not-a-uuid-at-all-xx"}, "query.cursor", "pattern"),
        (
            {"cursor": "-99999999999999999_" + "0" * 8 + "-0000" * 3 + "-" + "0" * 12},
            "query.cursor",
            "pattern",
        ),
        ({"plot_id": "plot-1"}, "query.plot_id", "UUID"),
        ({"tree_id": "1"}, "query.tree_id", "UUID"),
        ({"unassigned": "maybe"}, "query.unassigned", "boolean"),
        ({"device_id": ""}, "query.device_id", "should match pattern"),
        ({"device_id": "x" * 201}, "query.device_id", "should match pattern"),
        ({"device_id": "scale\x00"}, "query.device_id", "should match pattern"),
        ({"limit": 0}, "query.limit", "greater than or equal to 1"),
        ({"limit": 501}, "query.limit", "less than or equal to 500"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(
    client: TestClient, tenant_a: Tenant, params: dict[str, Any], field: str, reason: str
) -> None:
    r = client.get("/v1/harvests", params=params, headers=tenant_a.auth("read-only"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid" and reason in body["message"], body
    problem_fields = [p["field"] for p in body.get("details", {}).get("problems", [])]
    assert body["details"].get("field") == field or field in problem_fields, body


def test_every_status_is_documented(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/harvests"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])
    names = {p["name"] for p in operation["parameters"]}
    assert {"plot_id", "tree_id", "farm_id", "device_id", "from", "to", "unassigned"} <= names
    assert {"limit", "cursor"} <= names


def test_times_are_exact_in_the_cursor(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    """Harvests microseconds apart: the cursor keeps the microsecond, so no page skips one."""
    base = datetime(2026, 1, 5, 6, 0, 0, 123456, tzinfo=UTC)
    for i in range(3):
        add_harvests(conn, tenant_a.world, start=base + timedelta(microseconds=i))
    conn.commit()
    since = {"from": "2026-01-01T00:00:00Z"}
    seen = []
    cursor = None
    while True:
        params = {"limit": 1, **since, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/harvests", params=params, headers=tenant_a.auth()).json()
        seen += [h["id"] for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 15


def test_times_are_rfc3339_text_not_numbers(client: TestClient, tenant_a: Tenant) -> None:
    for value in ("0.5", "1700000000", "tomorrow"):
        r = client.get("/v1/harvests", params={"to": value}, headers=tenant_a.auth())
        assert r.status_code == 422 and "RFC 3339" in r.text, (value, r.text)
    ok = client.get("/v1/harvests", params={"to": "2030-01-01T00:00:00Z"}, headers=tenant_a.auth())
    assert ok.status_code == 200
