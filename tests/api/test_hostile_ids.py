"""Ids in paths that no registry could hold (NUL, lone surrogates, huge) get a 4xx with a
reason on the device endpoints this change added, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.builders import Tenant

HOSTILE = ["%00", "soil%00node", "%ED%A0%80", "x" * 5000, "..%2F..%2Fetc"]


@pytest.mark.parametrize("device_id", HOSTILE)
@pytest.mark.parametrize("action", ["disable", "enable", "credential"])
def test_hostile_device_ids_are_refused_with_a_reason(
    client: TestClient, tenant_a: Tenant, device_id: str, action: str
) -> None:
    r = client.post(f"/v1/devices/{device_id}/{action}", headers=tenant_a.auth("operator"))
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.json()["message"]


@pytest.mark.parametrize("device_id", HOSTILE)
def test_hostile_device_ids_on_registration(
    client: TestClient, tenant_a: Tenant, device_id: str
) -> None:
    r = client.post(
        "/v1/devices",
        json={"kind": "phone", "device_id": device_id.replace("%00", "\u0000")},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])


@pytest.mark.parametrize(
    "gtin",
    ["8930000\u0000000001", "\uff18\uff19\uff13" + "0" * 10, 8930000000001, True, "8" * 5000],
)
def test_hostile_gtins_are_refused_with_a_reason(
    client: TestClient, tenant_a: Tenant, gtin: object
) -> None:
    r = client.post(
        "/v1/products",
        json={"name": "Robusta", "kind": "green", "gtin": gtin},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])


def test_a_lone_surrogate_in_a_body_is_refused(client: TestClient, tenant_a: Tenant) -> None:
    r = client.post(
        "/v1/products",
        content=b'{"name": "Robusta \\ud800", "kind": "green"}',
        headers={**tenant_a.auth("operator"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])
