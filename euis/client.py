"""A client for the EU Information System's V3 SOAP services: Due Diligence Statement
(submitDds, amendDds, withdrawDds, getDds, getDdsByInternalReference, getDdsByIdentifiers) and
Verify Declaration (verifyDeclaration).

Built with zeep from the local WSDLs in `wsdl/` (nothing is fetched at run time), with the
WS-Security header of security.py, the `WebServiceClientId` header of the settings, and the
limiter of ratelimit.py around every call. Answers become model.py's types, faults the errors
of errors.py. The authentication key, the digest and the envelopes are never logged: zeep's
own transport logs every envelope at DEBUG, so this client posts through a transport that
does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from typing import Any
from urllib.parse import urlparse

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport

from coffeetrace.errors import ConfigError, ValidationFailed, first_line
from coffeetrace.euis.errors import EudrError, EudrUnavailable, fault_error, http_error
from coffeetrace.euis.model import FiledStatement, Modification, Overview, Verification
from coffeetrace.euis.ratelimit import CallLimiter
from coffeetrace.euis.security import UsernameTokenDigest
from coffeetrace.euis.statement import DDS_NS, StatementDocument
from coffeetrace.settings import Settings

log = logging.getLogger(__name__)

VERIFY_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/verify-declaration/v3"
DDS_SERVICE = "EUDRDueDiligenceStatementServiceV3"
VERIFY_SERVICE = "EUDRVerifyDeclarationServiceV3"
DDS_BINDING = f"{{{DDS_NS}}}EUDRDueDiligenceStatementSoapBinding"
VERIFY_BINDING = f"{{{VERIFY_NS}}}EUDRVerifyDeclarationSoapBinding"
# Operator API Reference 1.2.1 and 5.1
BASE_URLS = {
    "acceptance": "https://acceptance.eudr.webcloud.ec.europa.eu/tracesnt/ws/",
    "production": "https://eudr.webcloud.ec.europa.eu/tracesnt/ws/",
}
# The WebServiceClientId that public clients use on acceptance; the EU's V3 reference says only
# "your client identifier" from the profile, so production's has to be set.
ACCEPTANCE_CLIENT_ID = "eudr-test"
GET_DDS_MAX_UUIDS = 100  # GetDdsRequestType: uuidList maxOccurs="100"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class EuisConfig:
    """Where and as whom the client talks to the EU (from the COFFEETRACE_EUDR_* settings)."""

    environment: str
    base_url: str
    username: str
    auth_key: str = field(repr=False)
    client_id: str
    calls_per_s: float = 5.0
    timeout_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EuisConfig:
        """The settings' configuration; ConfigError naming what is missing or wrong."""
        missing = [
            name
            for name, value in (
                ("COFFEETRACE_EUDR_USERNAME", settings.eudr_username),
                ("COFFEETRACE_EUDR_AUTH_KEY", settings.eudr_auth_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                "talking to the EU Information System needs the web service user's "
                f"credentials: set {' and '.join(missing)} (EUDR profile, Web Services Access)",
                setting=missing[0],
            )
        client_id = settings.eudr_client_id
        if not client_id:
            if settings.eudr_environment != "acceptance":
                raise ConfigError(
                    "set COFFEETRACE_EUDR_CLIENT_ID to the WebServiceClientId your EUDR "
                    "profile shows for production (Web Services Access)",
                    setting="COFFEETRACE_EUDR_CLIENT_ID",
                )
            client_id = ACCEPTANCE_CLIENT_ID
        base_url = settings.eudr_base_url or BASE_URLS[settings.eudr_environment]
        parsed = urlparse(base_url)
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and parsed.hostname in _LOOPBACK
        ):
            raise ConfigError(
                f"COFFEETRACE_EUDR_BASE_URL must be an https:// URL (plain http only to this "
                f"machine, for tests); got {base_url!r}",
                setting="COFFEETRACE_EUDR_BASE_URL",
            )
        return cls(
            environment=settings.eudr_environment,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            username=settings.eudr_username,
            auth_key=settings.eudr_auth_key,
            client_id=client_id,
            calls_per_s=settings.eudr_calls_per_s,
            timeout_s=settings.eudr_timeout_s,
        )

    def service_url(self, service: str) -> str:
        return self.base_url + service


class _LocalQuietTransport(Transport):
    """zeep's transport, minus two things: its DEBUG log of every envelope and answer (the
    envelope holds the digest and the nonce), and fetching documents over the network (the
    WSDLs and schemas are the package's own files)."""

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        return self.session.post(
            address, data=message, headers=headers, timeout=self.operation_timeout
        )

    def load(self, url: str) -> bytes:
        if urlparse(url).scheme in ("http", "https"):
            raise RuntimeError(f"the local WSDLs must not name remote documents ({url})")
        return bytes(super().load(url))


def _wsdl(name: str) -> str:
    return str(files("coffeetrace.euis").joinpath("wsdl", name))


def _user_agent() -> str:
    try:
        return f"coffeetrace/{version('coffeetrace')}"
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "coffeetrace"


def _get(value: Any, name: str) -> Any:
    """A child of a zeep answer, whether zeep unwrapped a one-child answer or not."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    try:
        return value[name]
    except (KeyError, TypeError, AttributeError):
        return getattr(value, name, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    # udt-style values carry their text in `_value_1`
    text = value if isinstance(value, str) else _get(value, "_value_1")
    text = str(text).strip() if text is not None else ""
    return text or None


def _overview(value: Any) -> Overview:
    message = _get(value, "communicationToOperator")
    version_ = _get(value, "version")
    return Overview(
        uuid=str(_get(value, "uuid")),
        internal_reference=_text(_get(value, "internalReferenceNumber")) or "",
        status=str(_get(value, "status")),
        reference_number=_text(_get(value, "referenceNumber")),
        verification_number=_text(_get(value, "verificationNumber")),
        rejection_reason=_text(_get(value, "rejectionReason")),
        authority_message=_text(_get(message, "content")),
        authority_message_at=_get(message, "date"),
        date=_get(value, "date"),
        updated_by=_text(_get(value, "updatedBy")),
        version=int(version_) if version_ is not None else None,
    )


def _overviews(result: Any) -> list[Overview]:
    items = result if isinstance(result, list) else _get(result, "ddsOverviewList") or []
    return [_overview(item) for item in items]


class EuisClient:
    """One client for both services, sharing one HTTP session and one rate limiter. Safe to
    use from several threads; close it (or use it in a `with`) when done."""

    def __init__(
        self,
        config: EuisConfig,
        *,
        limiter: CallLimiter | None = None,
        security: UsernameTokenDigest | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter or CallLimiter(config.calls_per_s)
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = _user_agent()
        transport = _LocalQuietTransport(
            session=self._session, timeout=config.timeout_s, operation_timeout=config.timeout_s
        )
        settings = zeep.Settings(
            strict=True, xml_huge_tree=True, forbid_dtd=True, forbid_entities=True
        )
        security = security or UsernameTokenDigest(config.username, config.auth_key)
        self._dds_client = zeep.Client(
            _wsdl(f"{DDS_SERVICE}.wsdl"), transport=transport, wsse=security, settings=settings
        )
        self._verify_client = zeep.Client(
            _wsdl(f"{VERIFY_SERVICE}.wsdl"),
            transport=transport,
            wsse=security,
            settings=settings,
        )
        self._dds = self._dds_client.create_service(DDS_BINDING, config.service_url(DDS_SERVICE))
        self._verify = self._verify_client.create_service(
            VERIFY_BINDING, config.service_url(VERIFY_SERVICE)
        )
        self._submit_element = self._dds_client.get_element(f"{{{DDS_NS}}}SubmitDdsRequest")
        self._filed_element = self._dds_client.get_element(
            f"{{{DDS_NS}}}GetDdsByIdentifiersResponse"
        )

    def __enter__(self) -> EuisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- the calls ------------------------------------------------------------------
    def _call(self, service: Any, operation: str, url: str, **arguments: Any) -> Any:
        with self.limiter.slot():
            started = time.monotonic()
            try:
                result = getattr(service, operation)(
                    **arguments, _soapheaders={"webServiceClientId": self.config.client_id}
                )
            except zeep.exceptions.Fault as fault:
                error: EudrError = fault_error(
                    operation, str(fault.code or ""), str(fault.message or ""), fault.detail
                )
                self._log_failure(operation, started, error)
                raise error from None
            except zeep.exceptions.ValidationError as exc:
                # zeep checks what it renders against the schema before anything is sent
                raise ValidationFailed(
                    f"{operation}: the request does not follow the EU's schema: {exc}",
                    operation=operation,
                ) from None
            except zeep.exceptions.TransportError as exc:
                error = http_error(operation, exc.status_code, url)
                self._log_failure(operation, started, error)
                raise error from None
            except requests.RequestException as exc:
                error = EudrUnavailable(
                    f"could not reach the EU Information System at {url} for {operation}: "
                    f"{first_line(exc)}",
                    operation=operation,
                )
                self._log_failure(operation, started, error)
                raise error from None
            except zeep.exceptions.Error as exc:  # an answer its own WSDL does not describe
                error = EudrUnavailable(
                    f"the EU Information System's answer to {operation} does not follow its "
                    f"WSDL: {first_line(exc)}",
                    operation=operation,
                )
                self._log_failure(operation, started, error)
                raise error from None
        log.info(
            "eudr_call operation=%s environment=%s ms=%d",
            operation,
            self.config.environment,
            (time.monotonic() - started) * 1000,
        )
        return result

    def _log_failure(self, operation: str, started: float, error: EudrError) -> None:
        # info, not warning: the error itself goes to the caller, who decides how loud it is
        log.info(
            "eudr_call_failed operation=%s environment=%s ms=%d error=%s eu_errors=%s",
            operation,
            self.config.environment,
            (time.monotonic() - started) * 1000,
            error.code,
            ",".join(error.codes) or "-",
        )

    def _dds_call(self, operation: str, **arguments: Any) -> Any:
        return self._call(self._dds, operation, self.config.service_url(DDS_SERVICE), **arguments)

    def _parsed(self, statement: StatementDocument) -> Any:
        """The statement document as zeep's values of the schema (what zeep renders back)."""
        return self._submit_element.parse(statement.root, self._dds_client.wsdl.types)

    def submit(self, statement: StatementDocument) -> str:
        """submitDds: the UUID the EU gave the statement (it is SUBMITTED from then on)."""
        request = self._parsed(statement)
        result = self._dds_call(
            "submitDds", operatorRole=request.operatorRole, statement=request.statement
        )
        uuid = _get(result, "uuid") if not isinstance(result, str) else result
        log.info("eudr_submitted uuid=%s internal_reference=%s", uuid, statement.internal_reference)
        return str(uuid)

    def amend(self, eu_uuid: str, statement: StatementDocument) -> Modification:
        """amendDds (within 72 hours of submission; the statement keeps its reference
        number). The document's operatorRole is not part of an amendment."""
        request = self._parsed(statement)
        result = self._dds_call("amendDds", uuid=eu_uuid, statement=request.statement)
        return Modification(uuid=str(_get(result, "uuid")), status=str(_get(result, "status")))

    def withdraw(self, eu_uuid: str) -> Modification:
        """withdrawDds (within 72 hours of submission)."""
        result = self._dds_call("withdrawDds", uuid=eu_uuid)
        return Modification(uuid=str(_get(result, "uuid")), status=str(_get(result, "status")))

    def get(self, eu_uuids: Sequence[str]) -> list[Overview]:
        """getDds: the overview of each statement (100 UUIDs per call, as the EU allows)."""
        found: list[Overview] = []
        for start in range(0, len(eu_uuids), GET_DDS_MAX_UUIDS):
            chunk = list(eu_uuids[start : start + GET_DDS_MAX_UUIDS])
            found.extend(_overviews(self._dds_call("getDds", uuidList=chunk)))
        return found

    def get_by_internal_reference(self, internal_reference: str) -> list[Overview]:
        """getDdsByInternalReference: every statement of the operator with that reference."""
        return _overviews(
            self._dds_call("getDdsByInternalReference", internalReference=internal_reference)
        )

    def get_by_identifiers(self, reference_number: str, verification_number: str) -> FiledStatement:
        """getDdsByIdentifiers: the full statement, as XML."""
        result = self._dds_call(
            "getDdsByIdentifiers",
            referenceAndVerificationNumber={
                "referenceNumber": reference_number,
                "verificationNumber": verification_number,
            },
        )
        holder = etree.Element("holder")
        self._filed_element.render(holder, self._filed_element(statement=result))
        statement = holder[0].find(f"{{{DDS_NS}}}statement")
        assert statement is not None
        return FiledStatement(
            reference_number=reference_number,
            verification_number=verification_number,
            xml=etree.tostring(statement),
        )

    def verify(self, reference_number: str, verification_number: str) -> Verification:
        """verifyDeclaration: does the declaration exist, and may it be used?"""
        result = self._call(
            self._verify,
            "verifyDeclaration",
            self.config.service_url(VERIFY_SERVICE),
            referenceNumber=reference_number,
            verificationNumber=verification_number,
        )
        status = _get(result, "status")
        checked_at = _get(result, "dateTime")
        assert isinstance(checked_at, datetime)
        return Verification(
            reference_number=reference_number,
            result=str(_get(result, "result")),
            status=str(status) if status is not None else None,
            checked_at=checked_at,
        )


@contextmanager
def client_from_settings(settings: Settings) -> Iterator[EuisClient]:
    """A client for the settings' environment and credentials, closed after use."""
    client = EuisClient(EuisConfig.from_settings(settings))
    try:
        yield client
    finally:
        client.close()
