"""Limits the OpenAPI states are the limits the API enforces, before the domain: each
request here is one schemathesis found accepted or refused against its schema."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.builders import Tenant

POINT = {"type": "Point", "coordinates": [108.05, 12.68]}


def _plot(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    farm = str(tenant.world.farm["id"])
    return {"farm_id": farm, "code": "P-LIM", "geometry": POINT, "area_ha": 1.0} | fields


def _step(tenant: Tenant, kg: Any) -> dict[str, Any]:
    lot = str(tenant.cherry["id"]) if tenant.cherry else "00000000-0000-0000-0000-000000000000"
    return {
        "step": "drying",
        "occurred_at": "2025-12-01T00:00:00+07:00",
        "inputs": [{"lot_id": lot, "kg": kg}],
        "outputs": [{"code": "D-LIM", "kg": kg, "kind": "dried_cherry"}],
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        # booleans are strict: 0 is not false
        ("PUT", "/v1/farms/{farm}/private", {"data_consent": 0}, "data_consent"),
        ("POST", "/v1/farms", {"code": "F-LIM", "display_name_consent": "true"}, "consent"),
        # hectares and kilograms start at the columns' resolution, numbers are numbers
        ("POST", "/v1/plots", lambda t: _plot(t, area_ha=5e-324), "area_ha"),
        ("POST", "/v1/plots", lambda t: _plot(t, area_ha="2"), "area_ha"),
        ("POST", "/v1/transformations", lambda t: _step(t, 5e-324), "kg"),
        # no NUL in text (PostgreSQL text cannot store it)
        ("POST", "/v1/products", {"name": "Robusta\u0000"}, "name"),
        # fields required together
        ("POST", "/v1/devices", {"kind": "weather_station"}, "plot_id"),
        ("POST", "/v1/lots", {"code": "L-LIM", "harvest_ids": [], "tree_ids": []}, "harvests"),
        (
            "POST",
            "/v1/lots",
            {
                "code": "L-LIM",
                "farm_ids": ["00000000-0000-0000-0000-000000000000"],
                "since": "2025-12-01T00:00:00Z",
                "until": "2025-11-01T00:00:00Z",
            },
            "before until",
        ),
    ],
)
def test_a_request_outside_the_schema_is_refused_naming_the_field(
    client: TestClient, tenant_a: Tenant, method: str, path: str, body: Any, field: str
) -> None:
    if callable(body):  # built from the tenant's ids
        body = body(tenant_a)
    url = path.format(farm=tenant_a.world.farm["id"])
    r = client.request(method, url, json=body, headers=tenant_a.auth("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid" and field in r.json()["message"], r.text


def test_the_schema_states_what_it_enforces(app: FastAPI) -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    assert schemas["PlotIn"]["properties"]["area_ha"]["minimum"] == 0.0001
    assert schemas["LotInput"]["properties"]["kg"]["minimum"] == 0.001
    assert schemas["FarmPrivate"]["properties"]["data_consent"]["type"] == "boolean"
    assert [b["required"] for b in schemas["CherryLotIn"]["anyOf"]] == [
        ["harvest_ids"],
        ["tree_ids"],
        ["plot_ids"],
        ["farm_ids"],
    ]
    assert "plot_id" in schemas["SensorDeviceIn"]["required"]
    forward = spec["paths"]["/v1/trace/forward"]["get"]["parameters"]
    assert [p["schema"]["oneOf"] for p in forward if p["name"] == "from"] == [
        [{"required": [name]} for name in ("lot_id", "tree_id", "plot_id", "farm_id")]
    ]
    link = spec["paths"]["/01/{gtin}/10/{lot}"]["get"]["parameters"]
    lot = next(p for p in link if p["name"] == "lot")
    assert lot["schema"]["pattern"] == r'^[!"%-?A-Z_a-z]{1,20}$'
    assert spec["paths"]["/v1/products"]["get"]["parameters"][1]["schema"]["anyOf"][0] == {
        "type": "string",
        "format": "uuid",
    }


def test_a_cursor_not_returned_by_the_api_is_refused(client: TestClient, tenant_a: Tenant) -> None:
    for path in ("/v1/farms", "/v1/lots", "/v1/api-keys", "/v1/devices"):
        r = client.get(path, params={"cursor": "0" * 100}, headers=tenant_a.auth("admin"))
        assert r.status_code == 422 and "cursor" in r.json()["message"], (path, r.text)


def test_forward_trace_takes_exactly_one_start(client: TestClient, tenant_a: Tenant) -> None:
    ids = {"tree_id": str(tenant_a.world.trees[0]["id"]), "farm_id": str(tenant_a.world.farm["id"])}
    ro = tenant_a.auth("read-only")
    assert client.get("/v1/trace/forward", params=ids, headers=ro).status_code == 422
    assert client.get("/v1/trace/forward", headers=ro).status_code == 422
    one = client.get("/v1/trace/forward", params={"tree_id": ids["tree_id"]}, headers=ro)
    assert one.status_code == 200, one.text


def test_the_resolver_refuses_a_lot_outside_gs1_ai_10(client: TestClient) -> None:
    r = client.get("/01/08930000000019/10/" + "A" * 21)
    assert r.status_code == 422 and "lot" in r.json()["message"]
    r = client.get("/01/08930000000018/10/A1")  # wrong check digit
    assert r.status_code == 400
    r = client.get("/01/08930000000019/10/A%2521", headers={"Accept": "application/json"})
    assert r.status_code == 404  # "A%21": of AI 10's characters, just not a lot here
