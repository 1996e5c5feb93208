"""GET /v1/lots/{id}/dds: the lot's EUDR due diligence statement as JSON or XML, for the
operator of the lot's cooperative only, with every status it documents; and producer
names with the farm's consent to the authorities, which the public page never shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.trace import dds
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant
from tests.conftest import SHARED
from tests.trace.eudr_evidence_helpers import screen_all_plots

EUDR = SHARED / "reference" / "eudr"
NS = {"dds": dds.DDS_NS, "c": dds.COMMON_NS}
FILING = {"country": "DE", "operator_eori": "DE123456789012345"}


@pytest.fixture
def tenant_a(tenant_a: Tenant, conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    """Screened, so that its lot passes the EUDR readiness gate (test_eudr_readiness_api)."""
    screen_all_plots(conn, keys, tenant_a.coop_id)
    return tenant_a


@pytest.fixture
def tenant_b(tenant_b: Tenant, conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    screen_all_plots(conn, keys, tenant_b.coop_id)
    return tenant_b


@pytest.fixture
def xsd() -> Path:
    if not (EUDR / dds.SCHEMA_FILE).exists():
        pytest.skip(f"the EU's DDS schemas are not at {EUDR} (shared/ is not beside the checkout)")
    return EUDR


def url(tenant: Tenant) -> str:
    return f"/v1/lots/{tenant.green['id']}/dds"


def test_json_statement(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(url(tenant_a), params=FILING, headers=tenant_a.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-dds-statements"] == "1"
    doc = r.json()
    assert doc["lot"]["code"] == tenant_a.green["code"]
    assert doc["filing"]["operator"]["operatorReferenceNumber"] == [
        {"identifierType": "eori", "identifierValue": "DE123456789012345"}
    ]
    (request,) = doc["statements"]
    statement = request["statement"]
    assert statement["activityType"] == "IMPORT" and statement["countryOfActivity"] == "DE"
    (commodity,) = statement["commodities"]
    assert commodity["hsHeading"] == "090111"
    (producer,) = commodity["producers"]
    assert producer["name"] == tenant_a.world.coop["name"]  # no consent to the authorities
    assert doc["warnings"] == []


def test_xml_by_accept_and_by_format(client: TestClient, tenant_a: Tenant, xsd: Path) -> None:
    op = tenant_a.auth("operator")
    by_accept = client.get(
        url(tenant_a), params=FILING, headers={**op, "Accept": "application/xml"}
    )
    by_format = client.get(url(tenant_a), params={**FILING, "format": "xml"}, headers=op)
    for r in (by_accept, by_format):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml")
        assert (r.headers["x-dds-statements"], r.headers["x-dds-part"]) == ("1", "1")
        dds.validate_xml(r.content, xsd)
    assert by_accept.content == by_format.content
    root = ET.fromstring(by_accept.content)
    assert root.tag == f"{{{dds.DDS_NS}}}SubmitDdsRequest"
    hs = root.findtext("dds:statement/dds:commodities/dds:hsHeading", namespaces=NS)
    assert hs == "090111"
    # format wins over Accept; JSON preferred by q
    json_anyway = client.get(
        url(tenant_a),
        params={**FILING, "format": "json"},
        headers={**op, "Accept": "application/xml"},
    )
    assert json_anyway.headers["content-type"] == "application/json"
    preferred = client.get(
        url(tenant_a),
        params=FILING,
        headers={**op, "Accept": "application/xml;q=0.5, application/json"},
    )
    assert preferred.headers["content-type"] == "application/json"


def test_represented_operator_from_the_query(
    client: TestClient, tenant_a: Tenant, xsd: Path
) -> None:
    r = client.get(
        url(tenant_a),
        params={
            "format": "xml",
            "activity": "IMPORT",
            "country": "NL",
            "border_country": "BE",
            "represented_name": "Koffie Import B.V.",
            "represented_eori": "NL123456789",
            "represented_id": ["vat:NL123456789B01", "gln:8712345000004"],
            "represented_email": "dds@koffie.example",
            "represented_country": "NL",
            "represented_street": "Kade 1",
            "represented_postal_code": "3011 AA",
            "represented_city": "Rotterdam",
            "confidential": "true",
            "reference": "KI-0042",
            "grouped": ["25NLABC0000001"],
        },
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 200, r.text
    dds.validate_xml(r.content, xsd)
    root = ET.fromstring(r.content)
    assert root.findtext("dds:operatorRole", namespaces=NS) == "REPRESENTATIVE_OPERATOR"
    st = root.find("dds:statement", NS)
    assert st is not None
    values = [
        e.text
        for e in st.findall(
            "dds:representedOperator/c:operatorReferenceNumber/c:identifierValue", NS
        )
    ]
    assert values == ["NL123456789", "NL123456789B01", "8712345000004"]
    assert st.findtext("dds:representedOperator/c:operatorAddress/c:city", namespaces=NS) == (
        "Rotterdam"
    )
    assert st.findtext("dds:borderCrossCountry", namespaces=NS) == "BE"
    assert st.findtext("dds:geoLocationConfidential", namespaces=NS) == "true"
    assert st.findtext("dds:groupedDeclarations/c:groupedDeclaration", namespaces=NS) == (
        "25NLABC0000001"
    )


def test_another_cooperatives_lot_is_not_found(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    r = client.get(url(tenant_a), params=FILING, headers=tenant_b.auth("admin"))
    assert r.status_code == 404
    assert tenant_a.world.coop["name"] not in r.text
    own = client.get(url(tenant_b), params=FILING, headers=tenant_b.auth("admin"))
    assert own.status_code == 200
    assert tenant_a.world.coop["name"] not in own.text


@pytest.mark.parametrize(
    ("params", "headers_role", "status", "error"),
    [
        (FILING, None, 401, "unauthorized"),
        (FILING, "read-only", 403, "forbidden"),
        ({**FILING, "activity": "TRADE"}, "operator", 422, "invalid"),
        ({**FILING, "format": "xml", "part": 2}, "operator", 422, "invalid"),
        ({**FILING, "role": "REPRESENTATIVE_OPERATOR"}, "operator", 422, "invalid"),
        ({**FILING, "activity": "DOMESTIC", "border_country": "DE"}, "operator", 422, "invalid"),
        ({**FILING, "operator_eori": "123"}, "operator", 422, "invalid"),
        ({**FILING, "country": "VN"}, "operator", 422, "invalid"),
        ({**FILING, "represented_id": ["passport:X1"]}, "operator", 422, "invalid"),
        ({**FILING, "colour": "blue"}, "operator", 422, "invalid"),
    ],
)
def test_statuses(
    client: TestClient,
    tenant_a: Tenant,
    params: dict[str, Any],
    headers_role: str | None,
    status: int,
    error: str,
) -> None:
    headers = tenant_a.auth(headers_role) if headers_role else {}
    r = client.get(url(tenant_a), params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["message"]


def test_unknown_lot_is_404(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(
        "/v1/lots/00000000-0000-4000-8000-000000000000/dds", headers=tenant_a.auth("operator")
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_lot_from_no_plot_is_a_rule_violation(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    lot = conn.execute(
        "insert into lots (public_id, cooperative_id, code, kind, quantity_kg, remaining_kg)"
        " values ('empty-lot-000000000001', %s, 'EMPTY', 'green', 1, 1) returning id",
        (tenant_a.coop_id,),
    ).fetchone()
    conn.commit()
    r = client.get(f"/v1/lots/{lot['id']}/dds", params=FILING, headers=tenant_a.auth("operator"))
    assert r.status_code == 422
    assert r.json()["details"]["rule"] == "no_producers"


def test_every_status_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    dds_op = spec["paths"]["/v1/lots/{lot_id}/dds"]["get"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(dds_op["responses"])
    assert set(dds_op["responses"]["200"]["content"]) == {"application/json", "application/xml"}
    imports = spec["paths"]["/v1/plots/import"]["post"]
    assert {"200", "401", "403", "404", "409", "413", "422", "503"} <= set(imports["responses"])
    assert "multipart/form-data" in imports["requestBody"]["content"]


# --- producers and personal data ------------------------------------------------------------


def test_authority_consent_names_the_owner_and_the_page_never_does(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    farm = tenant_a.world.farm
    legal_name = "Nguyễn Thị Bích Hạnh"
    put = client.put(
        f"/v1/farms/{farm['id']}/private",
        json={"owner_name": legal_name, "data_consent": True, "authority_consent": True},
        headers=tenant_a.auth("operator"),
    )
    assert put.status_code == 204, put.text
    row = conn.execute(
        "select fp.authority_consent, e.payload -> 'records' -> 0 -> 'facts' as facts"
        " from farm_private fp join farms f on f.id = fp.farm_id"
        " join trace_events e on e.seq = f.event_seq where fp.farm_id = %s",
        (farm["id"],),
    ).fetchone()
    assert row["authority_consent"] is True and row["facts"]["authority_consent"] is True
    doc = client.get(url(tenant_a), params=FILING, headers=tenant_a.auth("operator")).json()
    (producer,) = doc["statements"][0]["statement"]["commodities"][0]["producers"]
    assert producer["name"] == legal_name
    assert {f["properties"]["ProducerName"] for f in dds.decoded_geojson(producer)["features"]} == {
        legal_name
    }
    public_id = tenant_a.green["public_id"]
    for accept in ("text/html", "application/json"):
        for lang in ("vi", "en"):
            page = client.get(f"/l/{public_id}", params={"lang": lang}, headers={"Accept": accept})
            assert page.status_code == 200
            assert legal_name not in page.text
            assert "Nguy\\u1ec5n Th\\u1ecb" not in page.text  # nor JSON-escaped
    # withdrawn: the cooperative is named again
    put = client.put(
        f"/v1/farms/{farm['id']}/private",
        json={"owner_name": legal_name, "authority_consent": False},
        headers=tenant_a.auth("operator"),
    )
    assert put.status_code == 204
    doc = client.get(url(tenant_a), params=FILING, headers=tenant_a.auth("operator")).json()
    (producer,) = doc["statements"][0]["statement"]["commodities"][0]["producers"]
    assert producer["name"] == tenant_a.world.coop["name"]


def test_authority_consent_is_a_strict_boolean(client: TestClient, tenant_a: Tenant) -> None:
    r = client.put(
        f"/v1/farms/{tenant_a.world.farm['id']}/private",
        json={"owner_name": "X", "authority_consent": "yes"},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 422
