"""What the EU Information System's refusals and failures become: errors of the project's own
family (coffeetrace/errors.py), carrying the EU's error codes.

The EU answers a refused request with a SOAP fault whose detail holds one of the WSDL's fault
elements (BusinessRulesValidationException, PermissionDeniedException, NotFoundException), each
a list of `Error` elements of the error schema (xsd5-error-v01.xsd: ID, Message, Field), e.g.
`EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY`. A fault without such a detail (a payload the
server could not read, a failed WS-Security check) and an answer that is no SOAP at all are
translated too, so that callers only ever see these classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from coffeetrace.errors import (
    CoffeetraceError,
    ConfigError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)

ERROR_NS = "http://ec.europa.eu/sanco/tracesnt/error/v01"
CREDENTIAL_SETTINGS = (
    "COFFEETRACE_EUDR_USERNAME, COFFEETRACE_EUDR_AUTH_KEY, COFFEETRACE_EUDR_CLIENT_ID"
)
# faultcodes of the WS-Security specification (SOAP Message Security 1.1, 12) for a header the
# server would not accept
_SECURITY_FAULTS = {
    "FailedAuthentication",
    "InvalidSecurity",
    "InvalidSecurityToken",
    "FailedCheck",
    "SecurityTokenUnavailable",
    "MessageExpired",
    "UnsupportedSecurityToken",
}


@dataclass(frozen=True)
class EuError:
    """One `Error` of the EU's fault detail."""

    code: str
    message: str
    field: str = ""

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.code}{where}: {self.message}" if self.message else self.code + where


class EudrError(CoffeetraceError):
    """Base of what a call to the EU Information System raises; `errors` are the EU's own."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        errors: Iterable[EuError] = (),
        fault_code: str = "",
    ) -> None:
        self.operation = operation
        self.errors = tuple(errors)
        self.fault_code = fault_code
        details: dict[str, Any] = {"operation": operation}
        if self.errors:
            details["eu_errors"] = [
                {"code": e.code, "message": e.message, "field": e.field} for e in self.errors
            ]
        if fault_code:
            details["fault_code"] = fault_code
        super().__init__(message, **details)

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.errors]


class EudrBusinessRulesRefused(EudrError, ValidationFailed):
    """BusinessRulesValidationException: the statement or the request breaks an EU rule."""

    code = "eudr_business_rules"


class EudrRequestInvalid(EudrError, ValidationFailed):
    """A client fault without the EU's error detail (a payload its schema refused)."""

    code = "eudr_invalid_request"


class EudrPermissionDenied(EudrError, Forbidden):
    """PermissionDeniedException: the web service user may not do this (role, operator)."""

    code = "eudr_permission_denied"


class EudrStatementNotFound(EudrError, NotFound):
    """NotFoundException: no statement with that identifier for this operator."""

    code = "eudr_not_found"


class EudrAuthenticationFailed(EudrError, ConfigError):
    """The EU did not accept the WS-Security header: the credentials in the settings."""

    code = "eudr_authentication"


class EudrUnavailable(EudrError, ServiceUnavailable):
    """The EU Information System did not answer, or answered with a server fault."""

    code = "eudr_unavailable"


_BY_DETAIL: dict[str, type[EudrError]] = {
    "BusinessRulesValidationException": EudrBusinessRulesRefused,
    "PermissionDeniedException": EudrPermissionDenied,
    "NotFoundException": EudrStatementNotFound,
}
_VERB = {
    EudrBusinessRulesRefused: "refused",
    EudrPermissionDenied: "denied",
    EudrStatementNotFound: "found nothing for",
}


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(node: etree._Element, *names: str) -> str:
    for child in node:
        if _local(child.tag) in names:
            return (child.text or "").strip()
    return ""


def eu_errors(fault_element: etree._Element) -> list[EuError]:
    """The `Error` elements of a fault element, as the error schema defines them (ID, Message,
    Field); also the lower-case `error` (code/field/message) of the EU reference's sample
    faults, which the schema does not describe."""
    found = []
    for node in fault_element.iter():
        if _local(node.tag) not in ("Error", "error"):
            continue
        code = _text(node, "ID", "id", "code")
        message = _text(node, "Message", "message")
        field = _text(node, "Field", "field")
        if code or message:
            found.append(EuError(code or "UNKNOWN", message, field))
    if not found and _local(fault_element.tag):
        message = _text(fault_element, "message", "Message")
        if message:
            found.append(EuError(_local(fault_element.tag), message))
    return found


def fault_error(
    operation: str, fault_code: str, fault_string: str, detail: etree._Element | None
) -> EudrError:
    """The project's error for a SOAP fault of `operation`."""
    fault_element = next(
        (child for child in (detail if detail is not None else ()) if _local(child.tag)), None
    )
    kind = _BY_DETAIL.get(_local(fault_element.tag)) if fault_element is not None else None
    code_name = fault_code.rsplit(":", 1)[-1].rsplit("}", 1)[-1]
    summary = fault_string or code_name or "no reason given"
    if kind is not None:
        assert fault_element is not None
        errors = eu_errors(fault_element)
        listed = "; ".join(str(e) for e in errors) or summary
        return kind(
            f"the EU Information System {_VERB[kind]} {operation}: {listed}",
            operation=operation,
            errors=errors,
            fault_code=fault_code,
        )
    if code_name in _SECURITY_FAULTS:
        return EudrAuthenticationFailed(
            f"the EU Information System did not accept the credentials of {operation} "
            f"({code_name}: {summary}); check {CREDENTIAL_SETTINGS} and this machine's clock "
            "(within 5 minutes of the EU's)",
            operation=operation,
            fault_code=fault_code,
        )
    if code_name == "Client":
        return EudrRequestInvalid(
            f"the EU Information System could not take {operation}: {summary}",
            operation=operation,
            fault_code=fault_code,
        )
    return EudrUnavailable(
        f"the EU Information System failed on {operation}: {summary}",
        operation=operation,
        fault_code=fault_code,
    )


def http_error(operation: str, status: int, url: str) -> EudrError:
    """The project's error for an HTTP answer that holds no SOAP envelope."""
    if status in (401, 403):
        return EudrAuthenticationFailed(
            f"the EU Information System refused {operation} at {url}: HTTP {status}; "
            f"check {CREDENTIAL_SETTINGS}",
            operation=operation,
        )
    return EudrUnavailable(
        f"the EU Information System failed on {operation} at {url}: HTTP {status}",
        operation=operation,
    )
