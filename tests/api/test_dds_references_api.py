"""POST /v1/lots/{id}/dds and GET /v1/lots/{id}/dds/references: the numbers recorded by
the lot's organisation (operators; another organisation's lot answers 404, a bad number
422 naming the field, the same number twice 409), listed for the lot and grouped by its
statement; and the public page saying "EUDR statement on file" in both languages, with
the number only when the organisation allows it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant
from tests.trace.eudr_evidence_helpers import screen_all_plots

REF, VER = "25VNA0000000A1", "KYBFRB6R"
JSON = "application/json"
BROWSER = {"Accept": "text/html"}


def _post(
    client: TestClient, tenant: Tenant, lot: dict, body: dict | str, role: str = "operator"
) -> Response:
    """`body` as JSON, or a str sent as it is (a lone surrogate escaped in JSON text)."""
    url, headers = f"/v1/lots/{lot['id']}/dds", tenant.auth(role)
    if isinstance(body, str):
        return client.post(url, content=body, headers={**headers, "content-type": JSON})
    return client.post(url, json=body, headers=headers)


def test_record_list_and_group(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant
) -> None:
    assert tenant_a.cherry is not None and tenant_a.green is not None
    # recorded on the cherry lot, in force for the green lot made of it
    body = {"reference_number": REF.lower(), "verification_number": VER, "role": "filed"}
    r = _post(client, tenant_a, tenant_a.cherry, {**body, "note": "filed by the coop"})
    assert r.status_code == 201, r.text
    assert r.json()["reference_number"] == REF and r.json()["event_seq"] > 0
    r = client.get(
        f"/v1/lots/{tenant_a.green['id']}/dds/references", headers=tenant_a.auth("read-only")
    )
    assert r.status_code == 200, r.text
    (found,) = r.json()["references"]
    assert found["reference_number"] == REF and found["verification_number"] == VER
    assert found["lot"]["code"] == tenant_a.cherry["code"] and not found["own"]
    assert found["organisation"]["code"] == tenant_a.world.coop["code"]
    assert r.json()["grouped"] == [REF]
    screen_all_plots(conn, keys, tenant_a.coop_id)
    r = client.get(
        f"/v1/lots/{tenant_a.green['id']}/dds",
        params={"country": "DE", "operator_eori": "DE123456789012345"},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["statements"][0]["statement"]["groupedDeclarations"] == [REF]
    own = client.get(f"/v1/lots/{tenant_a.green['id']}/epcis", headers=tenant_a.auth("read-only"))
    assert own.status_code == 200 and REF in own.text and VER in own.text
    public = client.get(f"/l/{tenant_a.green['public_id']}/epcis")
    assert public.status_code == 200 and REF not in public.text and VER not in public.text
    again = _post(client, tenant_a, tenant_a.cherry, {"reference_number": REF,
                  "verification_number": "OTHER123"})  # fmt: skip
    assert again.status_code == 409, again.text


@pytest.mark.parametrize(
    "body",
    [
        {"reference_number": "", "verification_number": VER},
        {"reference_number": "25VNA0000000A1X", "verification_number": VER},
        {"reference_number": "25VN\u0000", "verification_number": VER},
        '{"reference_number": "25VN\\ud800", "verification_number": "KYBFRB6R"}',
        {"reference_number": 12345, "verification_number": VER},
        {"reference_number": REF, "verification_number": "KYB"},
        {"reference_number": REF, "verification_number": "K" * 10_000},
        {"reference_number": REF},
        {"reference_number": REF, "verification_number": VER, "role": "bought"},
        {"reference_number": REF, "verification_number": VER, "extra": 1},
    ],
)
def test_bad_numbers_are_422(client: TestClient, tenant_a: Tenant, body: dict | str) -> None:
    assert tenant_a.green is not None
    r = _post(client, tenant_a, tenant_a.green, body)
    assert r.status_code == 422, r.text
    assert "error" in r.json()


def test_tenancy_and_roles(client: TestClient, tenant_a: Tenant, tenant_b: Tenant) -> None:
    assert tenant_a.green is not None
    body = {"reference_number": REF, "verification_number": VER}
    assert _post(client, tenant_b, tenant_a.green, body).status_code == 404
    r = client.get(
        f"/v1/lots/{tenant_a.green['id']}/dds/references", headers=tenant_b.auth("admin")
    )
    assert r.status_code == 404
    assert _post(client, tenant_a, tenant_a.green, body, role="read-only").status_code == 403
    assert client.post(f"/v1/lots/{tenant_a.green['id']}/dds", json=body).status_code == 401


@pytest.fixture
def uncached(settings: Settings) -> Iterator[TestClient]:
    """A client of an API that renders every page (a reference recorded upstream reaches a
    cached page within COFFEETRACE_PAGE_CACHE_TTL_S: it names no lot's event)."""
    with TestClient(create_app(settings.model_copy(update={"page_cache_entries": 0}))) as c:
        yield c


def test_the_page_says_a_statement_is_on_file(uncached: TestClient, tenant_a: Tenant) -> None:
    client = uncached
    assert tenant_a.green is not None
    url = f"/l/{tenant_a.green['public_id']}"
    before = client.get(url, params={"lang": "en"}, headers=BROWSER).text
    assert "EUDR statement on file" not in before
    body = {"reference_number": REF, "verification_number": VER}
    assert _post(client, tenant_a, tenant_a.green, body).status_code == 201
    en = client.get(url, params={"lang": "en"}, headers=BROWSER).text
    assert "EUDR statement on file" in en and REF not in en and VER not in en
    vi = client.get(url, params={"lang": "vi"}, headers=BROWSER).text
    assert "Đã có tờ khai thẩm định EUDR" in vi
    # the organisation allows the number: shown, the verification number never
    r = client.put(
        "/v1/organisations/me/dds-number-public",
        json={"public": True},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 403
    r = client.put(
        "/v1/organisations/me/dds-number-public",
        json={"public": True},
        headers=tenant_a.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["dds_number_public"] is True
    shown = client.get(url, params={"lang": "en"}, headers=BROWSER).text
    assert REF in shown and VER not in shown
