"""The EU Information System client against the local test server (soap_server.py), which
validates every request against the EU's schemas and checks its security header."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from coffeetrace.errors import ConfigError, ValidationFailed
from coffeetrace.euis.client import EuisClient, EuisConfig
from coffeetrace.euis.errors import (
    EudrAuthenticationFailed,
    EudrBusinessRulesRefused,
    EudrPermissionDenied,
    EudrRequestInvalid,
    EudrStatementNotFound,
    EudrUnavailable,
)
from coffeetrace.euis.security import UsernameTokenDigest
from coffeetrace.euis.statement import DDS_NS, read_statement
from coffeetrace.settings import Settings
from tests.euis.conftest import AUTH_KEY, USERNAME
from tests.euis.soap_server import (
    COMMON_NS,
    OPERATIONS,
    SOAP_NS,
    WSSE_NS,
    EuisTestServer,
    business,
)

NS = {"dds": DDS_NS, "c": COMMON_NS}
PACKAGE_WSDL = Path(__file__).resolve().parents[2] / "euis" / "wsdl"


def _shape(node: etree._Element) -> tuple[Any, ...]:
    """A document's elements and texts, whatever prefixes name its namespaces."""
    return (
        etree.QName(node).text,
        (node.text or "").strip(),
        tuple(_shape(child) for child in node if isinstance(child.tag, str)),
    )


def _edited(xml: bytes, path: str, text: str | None) -> bytes:
    """The example with the element at `path` given `text` (None: removed)."""
    root = etree.fromstring(xml)
    node = root.find(path, NS)
    assert node is not None, path
    if text is None:
        node.getparent().remove(node)
    else:
        node.text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _received_statement(server: EuisTestServer, operation: str) -> etree._Element:
    body = next(r.body for r in reversed(server.received) if r.operation == operation)
    node = etree.fromstring(body).find(f"{{{SOAP_NS}}}Body/*/{{{DDS_NS}}}statement")
    assert node is not None
    return node


def test_submit_poll_amend_withdraw_and_verify(
    client: EuisClient, soap_server: EuisTestServer, example_xml: bytes
) -> None:
    statement = read_statement(example_xml, source="the example")
    eu_uuid = client.submit(statement)

    # what the EU received is the example's statement, element for element
    sent = _received_statement(soap_server, "SubmitDdsRequest")
    original = etree.fromstring(example_xml).find("dds:statement", NS)
    assert original is not None and _shape(sent) == _shape(original)

    first = client.get([eu_uuid])
    assert [(o.uuid, o.status, o.reference_number) for o in first] == [(eu_uuid, "SUBMITTED", None)]
    (available,) = client.get([eu_uuid])
    assert available.status == "AVAILABLE"
    assert available.internal_reference == "CT-2026-DL-0001"
    assert available.reference_number and len(available.reference_number) == 14
    assert available.verification_number and 5 <= len(available.verification_number) <= 35
    assert available.version == 1 and available.date is not None

    (by_reference,) = client.get_by_internal_reference("CT-2026-DL-0001")
    assert (by_reference.uuid, by_reference.reference_number) == (
        eu_uuid,
        available.reference_number,
    )

    filed = client.get_by_identifiers(available.reference_number, available.verification_number)
    assert _shape(etree.fromstring(filed.xml)) == _shape(original)

    usable = client.verify(available.reference_number, available.verification_number)
    assert (usable.result, usable.status, usable.usable) == ("EXISTING_USABLE", "AVAILABLE", True)

    amended_doc = read_statement(
        _edited(
            example_xml,
            "dds:statement/dds:commodities/dds:descriptors/c:goodsMeasure/c:netWeight",
            "19150.5",
        ),
    )
    amended = client.amend(eu_uuid, amended_doc)
    assert (amended.uuid, amended.status) == (eu_uuid, "AVAILABLE")
    weight = _received_statement(soap_server, "AmendDdsRequest").find(
        "dds:commodities/dds:descriptors/c:goodsMeasure/c:netWeight", NS
    )
    assert weight is not None and weight.text == "19150.5"

    withdrawn = client.withdraw(eu_uuid)
    assert (withdrawn.uuid, withdrawn.status) == (eu_uuid, "WITHDRAWN")
    after = client.verify(available.reference_number, available.verification_number)
    assert (after.result, after.status, after.usable) == (
        "EXISTING_NON_USABLE",
        "WITHDRAWN",
        False,
    )

    # every request passed the server's checks: binding, security header, schema
    assert soap_server.auth_failures == []
    assert [(r.operation, r.outcome) for r in soap_server.received] == [
        ("SubmitDdsRequest", "ok"),
        ("GetDdsRequest", "ok"),
        ("GetDdsRequest", "ok"),
        ("GetDdsByInternalReferenceRequest", "ok"),
        ("GetDdsByIdentifiersRequest", "ok"),
        ("VerifyDeclarationRequest", "ok"),
        ("AmendDdsRequest", "ok"),
        ("WithdrawDdsRequest", "ok"),
        ("VerifyDeclarationRequest", "ok"),
    ]
    assert {r.action for r in soap_server.received} <= {a for _, a in OPERATIONS.values()}


def test_unknown_numbers_do_not_verify(client: EuisClient) -> None:
    answer = client.verify("26DEXXXXXXXXXX", "NOSUCH1")
    assert (answer.result, answer.status, answer.usable) == ("NON_EXISTENT", None, False)


def test_a_statement_whose_geolocation_fails_is_rejected_with_a_reason(
    client: EuisClient, example_xml: bytes
) -> None:
    line = {"type": "LineString", "coordinates": [[108.041213, 12.667842], [108.04, 12.66]]}
    geojson = base64.b64encode(repr(line).replace("'", '"').encode()).decode()
    doc = read_statement(
        _edited(
            example_xml, "dds:statement/dds:commodities/dds:producers/dds:geometryGeojson", geojson
        )
    )
    eu_uuid = client.submit(doc)
    assert client.get([eu_uuid])[0].status == "SUBMITTED"
    (rejected,) = client.get([eu_uuid])
    assert rejected.status == "REJECTED"
    assert rejected.reference_number is None
    assert rejected.rejection_reason is not None
    assert "EUDR_COMMODITIES_PRODUCER_GEO_INVALID" in rejected.rejection_reason
    assert "LineString" in rejected.rejection_reason


def test_a_business_rule_fault_becomes_the_projects_error_with_the_eu_codes(
    client: EuisClient, soap_server: EuisTestServer, example_xml: bytes
) -> None:
    # units instead of the net weight: valid for the schema, not for an IMPORT
    root = etree.fromstring(example_xml)
    weight = root.find(
        "dds:statement/dds:commodities/dds:descriptors/c:goodsMeasure/c:netWeight", NS
    )
    assert weight is not None
    weight.tag = f"{{{COMMON_NS}}}supplementaryUnit"
    etree.SubElement(weight.getparent(), f"{{{COMMON_NS}}}supplementaryUnitQualifier").text = "NAR"
    no_weight = read_statement(etree.tostring(root))
    with pytest.raises(EudrBusinessRulesRefused) as caught:
        client.submit(no_weight)
    error = caught.value
    assert error.status_code == 422 and error.code == "eudr_business_rules"
    assert error.codes == ["EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY"]
    assert error.errors[0].field.endswith("netWeight")
    assert "EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY" in error.message
    assert error.to_dict()["details"]["eu_errors"][0]["code"] == (
        "EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY"
    )
    assert soap_server.filed == {}


def test_not_found_and_permission_faults(
    client: EuisClient, soap_server: EuisTestServer, example_xml: bytes
) -> None:
    with pytest.raises(EudrStatementNotFound) as missing:
        client.get(["0b7e1c7e-0000-4000-8000-000000000000"])
    assert missing.value.status_code == 404
    assert missing.value.codes == ["EUDR_WEBSERVICE_STATEMENT_NOT_FOUND"]

    soap_server.fail_next.append(
        business(
            "EUDR_WEBSERVICE_USER_ACTIVITY_NOT_ALLOWED",
            "The user is requesting to use an EUDR role that is not valid for the operator.",
            "operatorRole",
            kind="PermissionDenied",
        )
    )
    with pytest.raises(EudrPermissionDenied) as denied:
        client.submit(read_statement(example_xml))
    assert denied.value.status_code == 403
    assert denied.value.codes == ["EUDR_WEBSERVICE_USER_ACTIVITY_NOT_ALLOWED"]


def test_a_request_the_schema_refuses_is_a_client_fault(
    client: EuisClient, soap_server: EuisTestServer
) -> None:
    with pytest.raises(EudrRequestInvalid) as caught:
        client.withdraw("not-a-uuid")
    assert "pattern" in caught.value.message
    assert soap_server.received[-1].outcome == "schema"


def test_statements_are_checked_before_anything_is_sent(example_xml: bytes) -> None:
    with pytest.raises(ValidationFailed, match="not well-formed"):
        read_statement(b"<dds:SubmitDdsRequest", source="lot.xml")
    with pytest.raises(ValidationFailed, match="not a SubmitDdsRequest"):
        read_statement(b'<FeatureCollection xmlns="urn:x"/>', source="lot.xml")
    trade = _edited(example_xml, "dds:statement/dds:activityType", "TRADE")
    with pytest.raises(ValidationFailed, match="does not follow the EU's DDS schema") as bad:
        read_statement(trade, source="lot.xml")
    assert "TRADE" in bad.value.message and "lot.xml" in bad.value.message
    long_ref = _edited(example_xml, "dds:statement/dds:internalReferenceNumber", "R" * 36)
    with pytest.raises(ValidationFailed, match="35 characters"):
        read_statement(long_ref)
    doc = read_statement(example_xml)
    assert (doc.operator_role, doc.activity_type, doc.internal_reference) == (
        "OPERATOR",
        "IMPORT",
        "CT-2026-DL-0001",
    )
    assert doc.sha256 == hashlib.sha256(example_xml).hexdigest()


def test_wrong_credentials_and_a_wrong_clock_are_refused(
    euis_settings: Settings, soap_server: EuisTestServer
) -> None:
    wrong = euis_settings.model_copy(update={"eudr_auth_key": AUTH_KEY + "x"})
    with (
        EuisClient(EuisConfig.from_settings(wrong)) as c,
        pytest.raises(EudrAuthenticationFailed) as caught,
    ):
        c.verify("26DEXXXXXXXXXX", "NOSUCH1")
    assert "COFFEETRACE_EUDR_AUTH_KEY" in caught.value.message
    late = UsernameTokenDigest(
        USERNAME, AUTH_KEY, clock=lambda: datetime.now(UTC) - timedelta(minutes=10)
    )
    with (
        EuisClient(EuisConfig.from_settings(euis_settings), security=late) as c,
        pytest.raises(EudrAuthenticationFailed, match="clock"),
    ):
        c.verify("26DEXXXXXXXXXX", "NOSUCH1")
    assert soap_server.auth_failures == ["digest mismatch", "created outside the window"]


def test_an_unreachable_server_is_unavailable(euis_settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    nowhere = euis_settings.model_copy(
        update={"eudr_base_url": f"http://127.0.0.1:{port}/tracesnt/ws/", "eudr_timeout_s": 5}
    )
    with (
        EuisClient(EuisConfig.from_settings(nowhere)) as c,
        pytest.raises(EudrUnavailable, match="could not reach") as caught,
    ):
        c.verify("26DEXXXXXXXXXX", "NOSUCH1")
    assert caught.value.status_code == 503


def test_a_burst_of_20_calls_never_puts_more_than_5_in_a_second(
    client: EuisClient, soap_server: EuisTestServer
) -> None:
    """Measured where the EU would count them: at the server, as requests arrive."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: client.verify(f"26DE{i:010d}", "NOSUCH1"), range(20)))
    assert [a.result for a in answers] == ["NON_EXISTENT"] * 20
    times = sorted(soap_server.times("VerifyDeclarationRequest"))
    assert len(times) == 20
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 5, times


def test_a_log_of_a_submission_holds_no_password_or_digest(
    client: EuisClient,
    soap_server: EuisTestServer,
    example_xml: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):  # the root logger: zeep, urllib3, requests, ours
        for name in ("zeep", "zeep.transports", "urllib3", "requests", "coffeetrace"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            eu_uuid = client.submit(read_statement(example_xml))
            client.get([eu_uuid])
        finally:
            for name in ("zeep", "zeep.transports", "urllib3", "requests", "coffeetrace"):
                logging.getLogger(name).setLevel(logging.NOTSET)
    secrets = {AUTH_KEY}
    for record in soap_server.received:
        security = etree.fromstring(record.body).find(f".//{{{WSSE_NS}}}UsernameToken")
        assert security is not None
        secrets.add(security.findtext(f"{{{WSSE_NS}}}Password") or "?")
        secrets.add(security.findtext(f"{{{WSSE_NS}}}Nonce") or "?")
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "eudr_submitted" in logged  # the log was captured at all
    assert len(secrets) == 5  # the key, two digests, two nonces
    for secret in secrets:
        assert secret not in logged
    assert AUTH_KEY not in repr(client.config)
    assert AUTH_KEY not in repr(Settings(eudr_auth_key=AUTH_KEY))


def test_configuration_names_what_is_missing(euis_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="COFFEETRACE_EUDR_AUTH_KEY"):
        EuisConfig.from_settings(euis_settings.model_copy(update={"eudr_auth_key": ""}))
    production = euis_settings.model_copy(
        update={"eudr_environment": "production", "eudr_base_url": ""}
    )
    with pytest.raises(ConfigError, match="COFFEETRACE_EUDR_CLIENT_ID"):
        EuisConfig.from_settings(production)
    named = EuisConfig.from_settings(production.model_copy(update={"eudr_client_id": "my-id"}))
    assert named.service_url("EUDRDueDiligenceStatementServiceV3") == (
        "https://eudr.webcloud.ec.europa.eu/tracesnt/ws/EUDRDueDiligenceStatementServiceV3"
    )
    acceptance = EuisConfig.from_settings(euis_settings.model_copy(update={"eudr_base_url": ""}))
    assert acceptance.base_url == "https://acceptance.eudr.webcloud.ec.europa.eu/tracesnt/ws/"
    assert acceptance.client_id == "eudr-test"
    with pytest.raises(ConfigError, match="https"):
        EuisConfig.from_settings(
            euis_settings.model_copy(update={"eudr_base_url": "http://eu.example/tracesnt/ws/"})
        )


def test_the_packaged_schemas_are_the_reference_copies(eudr_reference: Path) -> None:
    for xsd in sorted(eudr_reference.glob("*.xsd")):
        assert (PACKAGE_WSDL / xsd.name).read_bytes() == xsd.read_bytes(), xsd.name


def test_the_local_wsdls_bind_the_operations_as_the_eu_publishes() -> None:
    """Operation, request element and SOAPAction as in the EU's WSDLs (release 8.2.1) and its
    Operator API Reference; the test server holds the same table independently."""
    wsdl_ns = {
        "w": "http://schemas.xmlsoap.org/wsdl/",
        "s": "http://schemas.xmlsoap.org/wsdl/soap/",
    }
    found: dict[str, str] = {}
    for name in ("EUDRDueDiligenceStatementServiceV3", "EUDRVerifyDeclarationServiceV3"):
        doc = etree.parse(str(PACKAGE_WSDL / f"{name}.wsdl"))
        for op in doc.iterfind("w:binding/w:operation", wsdl_ns):
            action = op.find("s:operation", wsdl_ns)
            header = op.find("w:input/s:header", wsdl_ns)
            assert action is not None and header is not None
            assert header.get("part") == "webServiceClientId"
            found[op.get("name", "")] = action.get("soapAction", "")
    assert found == {
        "submitDds": OPERATIONS["SubmitDdsRequest"][1],
        "amendDds": OPERATIONS["AmendDdsRequest"][1],
        "withdrawDds": OPERATIONS["WithdrawDdsRequest"][1],
        "getDds": OPERATIONS["GetDdsRequest"][1],
        "getDdsByInternalReference": OPERATIONS["GetDdsByInternalReferenceRequest"][1],
        "getDdsByIdentifiers": OPERATIONS["GetDdsByIdentifiersRequest"][1],
        "verifyDeclaration": OPERATIONS["VerifyDeclarationRequest"][1],
    }
