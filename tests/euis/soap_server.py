"""A local stand-in for the EU Information System's V3 DDS and Verify Declaration services.

It checks every request the way the tests need the real one to be satisfied, independently of
euis/ (only the standard library, lxml and the EU's schemas in
../shared/reference/eudr/):
- the SOAPAction header names the operation of the body, as the WSDL binds it;
- the WS-Security header: a wsu:Timestamp (Created, Expires), a UsernameToken whose
  PasswordDigest it recomputes with hashlib from the nonce, the created time and the test
  key, a created time within the window of its clock, a nonce never seen before; and the
  base/v4 WebServiceClientId header;
- the body's request element against the EU's XSDs.
It answers as the WSDL defines (responses and fault details validated against the same
schemas before they leave): submitDds gives a UUID; the first status read says SUBMITTED,
the next AVAILABLE with reference and verification numbers (or REJECTED with a reason when
the statement's GeoJSON fails its checks); amendDds and withdrawDds change the status;
faults carry the error schema's shape (xsd5-error-v01.xsd: Error with ID, Message, Field).

Error codes: EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY, EUDR_COMMODITIES_PRODUCER_GEO_INVALID
and EUDR_WEBSERVICE_STATEMENT_NOT_FOUND are the EU's documented ones; the codes this server
uses for amend/withdraw outside AVAILABLE are its own (the EU documents none). A schema-invalid
request gets a bare soap:Client fault without detail, as a JAX-WS server answers one it cannot
unmarshal (an assumption: the EU does not document it); a WS-Security failure the standard
wsse:FailedAuthentication fault.

Call times are taken with time.monotonic() as each request arrives (`received`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
DDS_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/due-diligence-statement/v3"
COMMON_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/common/v3"
VERIFY_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/verify-declaration/v3"
ERROR_NS = "http://ec.europa.eu/sanco/tracesnt/error/v01"
BASE_NS = "http://ec.europa.eu/sanco/tracesnt/base/v4"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
NONCE_ENCODING = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
DDS_PATH = "/tracesnt/ws/EUDRDueDiligenceStatementServiceV3"
VERIFY_PATH = "/tracesnt/ws/EUDRVerifyDeclarationServiceV3"
# body element -> (path, SOAPAction), as the EU's WSDLs (release 8.2.1) bind them
OPERATIONS = {
    "SubmitDdsRequest": (DDS_PATH, f"{DDS_NS}/submitDds"),
    "AmendDdsRequest": (DDS_PATH, f"{DDS_NS}/amendDds"),
    "WithdrawDdsRequest": (DDS_PATH, f"{DDS_NS}/withdrawDds"),
    "GetDdsRequest": (DDS_PATH, f"{DDS_NS}/getDds"),
    "GetDdsByInternalReferenceRequest": (DDS_PATH, f"{DDS_NS}/getDdsByInternalReference"),
    "GetDdsByIdentifiersRequest": (DDS_PATH, f"{DDS_NS}/getDdsByIdentifiers"),
    "VerifyDeclarationRequest": (
        VERIFY_PATH,
        "http://ec.europa.eu/tracesnt/certificate/eudr/verification/v3/verify-declaration",
    ),
}
USABLE = {"AVAILABLE", "GROUPED", "ARCHIVED"}
GEOMETRY_TYPES = {"Point", "MultiPoint", "Polygon", "MultiPolygon", "GeometryCollection"}


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, _q(ns, name))
    if text is not None:
        node.text = text
    return node


@dataclass
class Received:
    """One request as it arrived."""

    at: float  # time.monotonic() at arrival
    path: str
    action: str
    operation: str  # local name of the body's element ('' when unreadable)
    body: bytes
    outcome: str = "ok"  # ok, or the reason of the fault answered


@dataclass
class Filed:
    """A statement the server holds."""

    uuid: str
    internal_reference: str
    statement: bytes  # the dds:statement element
    activity_type: str
    status: str = "SUBMITTED"
    reads: int = 0
    reference_number: str | None = None
    verification_number: str | None = None
    rejection_reason: str | None = None
    geo_problem: str | None = None
    version: int = 1
    date: datetime = field(default_factory=lambda: datetime.now(UTC))


class Fault(Exception):
    """A SOAP fault to answer: `detail` is None or (fault element, [(ID, Message, Field)])."""

    def __init__(
        self,
        code: str,
        string_: str,
        reason: str,
        detail: tuple[str, list[tuple[str, str, str]]] | None = None,
        ns: str = DDS_NS,
    ) -> None:
        super().__init__(reason)
        self.code, self.string, self.reason, self.detail, self.ns = (
            code,
            string_,
            reason,
            detail,
            ns,
        )


def business(
    code: str, message: str, field_: str, ns: str = DDS_NS, kind: str = "BusinessRules"
) -> Fault:
    element = {
        "BusinessRules": "BusinessRulesValidationException",
        "PermissionDenied": "PermissionDeniedException",
        "NotFound": "NotFoundException",
    }[kind]
    return Fault(
        "S:Client",
        {"BusinessRules": "Some business rules are not met"}.get(kind, message),
        f"{element}:{code}",
        (element, [(code, message, field_)]),
        ns,
    )


class EuisTestServer:
    """Start with start(), stop with stop(); `base_url` is what COFFEETRACE_EUDR_BASE_URL
    takes. `fail_next` (a list of Fault) makes the next requests fail as given."""

    def __init__(
        self,
        reference: Path,
        *,
        username: str,
        auth_key: str,
        client_id: str = "eudr-test",
        window_s: float = 300.0,
    ) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        self._parser = parser
        self.dds_schema = etree.XMLSchema(
            etree.parse(str(reference / "xsd4-due-diligence-statement-v3.xsd"), parser)
        )
        self.verify_schema = etree.XMLSchema(
            etree.parse(str(reference / "xsd3-verify-declaration-v3.xsd"), parser)
        )
        self.username, self.auth_key, self.client_id = username, auth_key, client_id
        self.window = timedelta(seconds=window_s)
        self.received: list[Received] = []
        self.filed: dict[str, Filed] = {}
        self.fail_next: list[Fault] = []
        self.auth_failures: list[str] = []
        self._nonces: set[bytes] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life -------------------------------------------------------------------------
    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = server.handle(
                    at, self.path, self.headers.get("SOAPAction", ""), body
                )
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/tracesnt/ws/"

    def times(self, operation: str | None = None) -> list[float]:
        with self._lock:
            return [r.at for r in self.received if operation in (None, r.operation)]

    # --- one request --------------------------------------------------------------------
    def handle(self, at: float, path: str, action: str, body: bytes) -> tuple[int, bytes]:
        record = Received(at, path, action.strip('"'), "", body)
        with self._lock:
            self.received.append(record)
            try:
                envelope = etree.fromstring(body, self._parser)
                request = self._request_element(envelope)
                record.operation = etree.QName(request).localname
                schema = self._check_binding(record, request)
                self._check_security(envelope)
                self._check_schema(schema, request)
                if self.fail_next:
                    raise self.fail_next.pop(0)
                answer = self._dispatch(request)
            except Fault as fault:
                record.outcome = fault.reason
                return 500, self._fault(fault)
            except etree.XMLSyntaxError as exc:
                record.outcome = f"not XML: {exc}"
                return 500, self._fault(Fault("S:Client", f"Unmarshalling Error: {exc}", "xml"))
            return 200, self._envelope(answer)

    def _request_element(self, envelope: etree._Element) -> etree._Element:
        if envelope.tag != _q(SOAP_NS, "Envelope"):
            raise Fault("S:Client", "not a SOAP 1.1 envelope", "envelope")
        body = envelope.find(_q(SOAP_NS, "Body"))
        children = [c for c in (body if body is not None else []) if isinstance(c.tag, str)]
        if len(children) != 1:
            raise Fault("S:Client", "the Body must hold one request element", "body")
        return children[0]

    def _check_binding(self, record: Received, request: etree._Element) -> etree.XMLSchema:
        """The service and SOAPAction of the body's operation; the schema of its service."""
        expected = OPERATIONS.get(record.operation)
        if expected is None:
            raise Fault("S:Client", f"no operation takes {request.tag}", "operation")
        path, action = expected
        if record.path != path or record.action != action:
            raise Fault(
                "S:Client",
                f"{record.operation} belongs at {path} with SOAPAction {action}",
                "binding",
            )
        return self.dds_schema if path == DDS_PATH else self.verify_schema

    def _check_schema(self, schema: etree.XMLSchema, request: etree._Element) -> None:
        alone = etree.fromstring(etree.tostring(request), self._parser)
        if not schema.validate(alone):
            first = schema.error_log[0]
            raise Fault("S:Client", f"Unmarshalling Error: {first.message}", "schema")

    def _auth_failure(self, why: str) -> Fault:
        self.auth_failures.append(why)
        fault = Fault(
            "wsse:FailedAuthentication",
            "The security token could not be authenticated or authorized",
            f"security: {why}",
        )
        return fault

    def _check_security(self, envelope: etree._Element) -> None:
        header = envelope.find(_q(SOAP_NS, "Header"))
        if header is None:
            raise self._auth_failure("no Header")
        client_ids = header.findall(_q(BASE_NS, "WebServiceClientId"))
        if [c.text for c in client_ids] != [self.client_id]:
            raise self._auth_failure(f"WebServiceClientId {[c.text for c in client_ids]}")
        securities = header.findall(_q(WSSE_NS, "Security"))
        if len(securities) != 1:
            raise self._auth_failure(f"{len(securities)} Security headers")
        security = securities[0]
        ts_created = security.findtext(f"{_q(WSU_NS, 'Timestamp')}/{_q(WSU_NS, 'Created')}")
        ts_expires = security.findtext(f"{_q(WSU_NS, 'Timestamp')}/{_q(WSU_NS, 'Expires')}")
        token = security.find(_q(WSSE_NS, "UsernameToken"))
        if ts_created is None or ts_expires is None or token is None:
            raise self._auth_failure("Timestamp or UsernameToken missing")
        password = token.find(_q(WSSE_NS, "Password"))
        nonce_el = token.find(_q(WSSE_NS, "Nonce"))
        created = token.findtext(_q(WSU_NS, "Created"))
        if token.findtext(_q(WSSE_NS, "Username")) != self.username:
            raise self._auth_failure("unknown username")
        if password is None or password.get("Type") != DIGEST_TYPE:
            raise self._auth_failure("password is not a PasswordDigest")
        if nonce_el is None or nonce_el.get("EncodingType") != NONCE_ENCODING or not created:
            raise self._auth_failure("Nonce or Created missing")
        try:
            nonce = base64.b64decode(nonce_el.text or "", validate=True)
        except binascii.Error:
            raise self._auth_failure("Nonce is not Base64") from None
        expected = base64.b64encode(
            hashlib.sha1(nonce + created.encode() + self.auth_key.encode()).digest()
        ).decode()
        if password.text != expected:
            raise self._auth_failure("digest mismatch")
        now = datetime.now(UTC)
        made = datetime.fromisoformat(created.replace("Z", "+00:00"))
        if abs(now - made) > self.window:
            raise self._auth_failure("created outside the window")
        expires = datetime.fromisoformat(ts_expires.replace("Z", "+00:00"))
        if expires <= now or ts_created != created:
            raise self._auth_failure("Timestamp expired or not the token's")
        if nonce in self._nonces:
            raise self._auth_failure("nonce replayed")
        self._nonces.add(nonce)

    # --- the operations -----------------------------------------------------------------
    def _dispatch(self, request: etree._Element) -> etree._Element:
        name = etree.QName(request).localname
        handler = getattr(self, "_op_" + name)
        answer: etree._Element = handler(request)
        schema = self.verify_schema if name == "VerifyDeclarationRequest" else self.dds_schema
        schema.assertValid(answer)  # answers as the WSDL (its schema) defines them
        return answer

    def _find(self, request: etree._Element, path: str) -> str:
        return (request.findtext(path, namespaces={"d": DDS_NS, "c": COMMON_NS}) or "").strip()

    def _check_rules(self, statement: etree._Element) -> str:
        activity = self._find(statement, "d:activityType")
        if activity in ("IMPORT", "EXPORT"):
            for i, commodity in enumerate(statement.iterfind(_q(DDS_NS, "commodities"))):
                if not self._find(commodity, "d:descriptors/c:goodsMeasure/c:netWeight"):
                    raise business(
                        "EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY",
                        "Net Mass is mandatory for IMPORT or EXPORT activity.",
                        f"commodities[{i}].descriptors.goodsMeasure.netWeight",
                    )
        return activity

    def _geo_problem(self, statement: etree._Element) -> str | None:
        for node in statement.iter(_q(DDS_NS, "geometryGeojson")):
            try:
                doc = json.loads(base64.b64decode(node.text or ""))
            except ValueError as exc:
                return f"not GeoJSON: {exc}"
            geometries = (
                [f.get("geometry") or {} for f in doc.get("features", [])]
                if doc.get("type") == "FeatureCollection"
                else [doc.get("geometry") or {}]
                if doc.get("type") == "Feature"
                else [doc]
            )
            for geometry in geometries:
                kind = geometry.get("type")
                if kind not in GEOMETRY_TYPES:
                    return f"geometry type {kind!r} is not allowed"
                if kind == "Polygon":
                    for ring in geometry.get("coordinates", []):
                        if len(ring) < 4 or ring[0] != ring[-1]:
                            return "a polygon ring is not closed or has fewer than 4 positions"
        return None

    def _op_SubmitDdsRequest(self, request: etree._Element) -> etree._Element:  # noqa: N802
        statement = request.find(_q(DDS_NS, "statement"))
        assert statement is not None
        activity = self._check_rules(statement)
        filed = Filed(
            uuid=str(uuid.uuid4()),
            internal_reference=self._find(statement, "d:internalReferenceNumber")
            or "CT" + secrets.token_hex(6).upper(),
            statement=etree.tostring(statement),
            activity_type=activity,
            geo_problem=self._geo_problem(statement),
        )
        self.filed[filed.uuid] = filed
        answer = etree.Element(_q(DDS_NS, "SubmitDdsResponse"))
        _sub(answer, DDS_NS, "uuid", filed.uuid)
        return answer

    def _known(self, eu_uuid: str, kind: str = "BusinessRules") -> Filed:
        filed = self.filed.get(eu_uuid)
        if filed is None:
            raise business(
                "EUDR_WEBSERVICE_STATEMENT_NOT_FOUND",
                "The statement does not exist or is not yours.",
                "uuid",
                kind=kind,
            )
        return filed

    def _modified(self, name: str, filed: Filed) -> etree._Element:
        answer = etree.Element(_q(DDS_NS, name))
        _sub(answer, DDS_NS, "uuid", filed.uuid)
        _sub(answer, DDS_NS, "status", filed.status)
        return answer

    def _op_AmendDdsRequest(self, request: etree._Element) -> etree._Element:  # noqa: N802
        filed = self._known(self._find(request, "d:uuid"))
        if filed.status != "AVAILABLE":
            raise business(
                "TEST_SERVER_AMEND_NOT_AVAILABLE",
                f"Only an AVAILABLE statement can be amended (this one is {filed.status}).",
                "uuid",
            )
        statement = request.find(_q(DDS_NS, "statement"))
        assert statement is not None
        self._check_rules(statement)
        filed.statement = etree.tostring(statement)
        filed.version += 1
        filed.date = datetime.now(UTC)
        return self._modified("AmendDdsResponse", filed)

    def _op_WithdrawDdsRequest(self, request: etree._Element) -> etree._Element:  # noqa: N802
        filed = self._known(self._find(request, "d:uuid"))
        if filed.status not in ("SUBMITTED", "AVAILABLE"):
            raise business(
                "TEST_SERVER_WITHDRAW_NOT_AVAILABLE",
                f"A {filed.status} statement cannot be withdrawn.",
                "uuid",
            )
        filed.status = "WITHDRAWN"
        filed.date = datetime.now(UTC)
        return self._modified("WithdrawDdsResponse", filed)

    def _progress(self, filed: Filed) -> None:
        """SUBMITTED at the first read, then AVAILABLE (or REJECTED) from the second."""
        filed.reads += 1
        if filed.status != "SUBMITTED" or filed.reads < 2:
            return
        if filed.geo_problem:
            filed.status = "REJECTED"
            filed.rejection_reason = f"EUDR_COMMODITIES_PRODUCER_GEO_INVALID: {filed.geo_problem}"
        else:
            filed.status = "AVAILABLE"
            letters = string.ascii_uppercase + string.digits
            filed.reference_number = "26DE" + "".join(secrets.choice(letters) for _ in range(10))
            filed.verification_number = "".join(secrets.choice(letters) for _ in range(8))
        filed.date = datetime.now(UTC)

    def _overviews(self, name: str, found: list[Filed]) -> etree._Element:
        answer = etree.Element(_q(DDS_NS, name))
        for filed in found:
            self._progress(filed)
            item = _sub(answer, DDS_NS, "ddsOverviewList")
            _sub(item, COMMON_NS, "uuid", filed.uuid)
            _sub(item, COMMON_NS, "internalReferenceNumber", filed.internal_reference)
            if filed.reference_number:
                _sub(item, COMMON_NS, "referenceNumber", filed.reference_number)
                _sub(item, COMMON_NS, "verificationNumber", filed.verification_number)
            _sub(item, COMMON_NS, "status", filed.status)
            if filed.rejection_reason:
                _sub(item, COMMON_NS, "rejectionReason", filed.rejection_reason)
            _sub(item, COMMON_NS, "date", filed.date.isoformat().replace("+00:00", "Z"))
            _sub(item, COMMON_NS, "updatedBy", "Test Server")
            _sub(item, COMMON_NS, "version", str(filed.version))
        return answer

    def _op_GetDdsRequest(self, request: etree._Element) -> etree._Element:  # noqa: N802
        found = [
            self._known((node.text or "").strip(), kind="NotFound")
            for node in request.iterfind(_q(DDS_NS, "uuidList"))
        ]
        return self._overviews("GetDdsResponse", found)

    def _op_GetDdsByInternalReferenceRequest(  # noqa: N802
        self, request: etree._Element
    ) -> etree._Element:
        reference = self._find(request, "d:internalReference")
        found = [f for f in self.filed.values() if f.internal_reference == reference]
        if not found:
            raise business(
                "EUDR_WEBSERVICE_STATEMENT_NOT_FOUND",
                "No statement has this internal reference.",
                "internalReference",
                kind="NotFound",
            )
        return self._overviews("GetDdsByInternalReferenceResponse", found)

    def _by_numbers(self, reference: str, verification: str) -> Filed | None:
        return next(
            (
                f
                for f in self.filed.values()
                if f.reference_number == reference and f.verification_number == verification
            ),
            None,
        )

    def _op_GetDdsByIdentifiersRequest(  # noqa: N802
        self, request: etree._Element
    ) -> etree._Element:
        filed = self._by_numbers(
            self._find(request, "d:referenceAndVerificationNumber/c:referenceNumber"),
            self._find(request, "d:referenceAndVerificationNumber/c:verificationNumber"),
        )
        if filed is None or filed.status not in USABLE:
            raise business(
                "EUDR_WEBSERVICE_STATEMENT_NOT_FOUND",
                "DDS not found or not in AVAILABLE/ARCHIVED status.",
                "referenceAndVerificationNumber",
                kind="NotFound",
            )
        answer = etree.Element(_q(DDS_NS, "GetDdsByIdentifiersResponse"))
        answer.append(etree.fromstring(filed.statement, self._parser))
        return answer

    def _op_VerifyDeclarationRequest(self, request: etree._Element) -> etree._Element:  # noqa: N802
        ns = {"v": VERIFY_NS}
        filed = self._by_numbers(
            (request.findtext("v:referenceNumber", namespaces=ns) or "").strip(),
            (request.findtext("v:verificationNumber", namespaces=ns) or "").strip(),
        )
        answer = etree.Element(_q(VERIFY_NS, "VerifyDeclarationResponse"))
        if filed is None:
            _sub(answer, VERIFY_NS, "result", "NON_EXISTENT")
        else:
            usable = filed.status in USABLE
            _sub(
                answer, VERIFY_NS, "result", "EXISTING_USABLE" if usable else "EXISTING_NON_USABLE"
            )
            _sub(answer, VERIFY_NS, "status", filed.status)
        _sub(answer, VERIFY_NS, "dateTime", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        return answer

    # --- envelopes ----------------------------------------------------------------------
    def _envelope(self, content: etree._Element) -> bytes:
        envelope = etree.Element(_q(SOAP_NS, "Envelope"), nsmap={"S": SOAP_NS})
        header = _sub(envelope, SOAP_NS, "Header")
        timestamp = _sub(_sub(header, WSSE_NS, "Security"), WSU_NS, "Timestamp")
        now = datetime.now(UTC)
        _sub(timestamp, WSU_NS, "Created", now.isoformat())
        _sub(timestamp, WSU_NS, "Expires", (now + timedelta(seconds=5)).isoformat())
        _sub(envelope, SOAP_NS, "Body").append(content)
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _fault(self, fault: Fault) -> bytes:
        nsmap = {"S": SOAP_NS}
        if fault.code.startswith("wsse:"):
            nsmap["wsse"] = WSSE_NS
        envelope = etree.Element(_q(SOAP_NS, "Envelope"), nsmap=nsmap)
        node = _sub(_sub(envelope, SOAP_NS, "Body"), SOAP_NS, "Fault")
        etree.SubElement(node, "faultcode").text = fault.code
        etree.SubElement(node, "faultstring").text = fault.string
        if fault.detail is not None:
            element, errors = fault.detail
            exception = etree.Element(_q(fault.ns, element))
            for code, message, field_ in errors:
                error = _sub(exception, ERROR_NS, "Error")
                _sub(error, ERROR_NS, "ID", code)
                _sub(error, ERROR_NS, "Message", message).set("languageID", "en")
                _sub(error, ERROR_NS, "Field", field_).set("languageID", "en")
            schema = self.verify_schema if fault.ns == VERIFY_NS else self.dds_schema
            schema.assertValid(exception)  # the error schema's shape (xsd5-error-v01.xsd)
            etree.SubElement(node, "detail").append(exception)
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
