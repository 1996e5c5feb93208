"""WS-Security for the EU Information System: a UsernameToken with a PasswordDigest, and a
Timestamp, in every request.

As the EU's Operator API Reference (V3, sections 1.2.3, 3.5 and 3.6) describes it: HTTPS, a
`wsse:UsernameToken` whose password is the digest of the web service user's authentication key,
`Base64(SHA-1(nonce + created + key))` with the nonce's raw bytes (its Base64 text goes in
`wsse:Nonce`) and `created` exactly as written in `wsu:Created`; a `wsu:Timestamp` with Created and
Expires; `created` within 5 minutes of the server's clock. The key itself never leaves the
process; nothing here logs.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from zeep.wsdl.utils import get_or_create_header

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
NSMAP = {"wsse": WSSE_NS, "wsu": WSU_NS}
NONCE_BYTES = 16
# The EU's sample request expires 5 minutes after it is created (Operator API Reference 3.6).
TIMESTAMP_TTL = timedelta(minutes=5)


def password_digest(nonce: bytes, created: str, auth_key: str) -> str:
    """Base64(SHA-1(nonce + created + key)): nonce as raw bytes, created and key as UTF-8."""
    raw = nonce + created.encode("utf-8") + auth_key.encode("utf-8")
    return base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")


def utc_stamp(moment: datetime) -> str:
    """An xs:dateTime in UTC with milliseconds, as the EU's samples write it
    (2026-01-15T10:00:00.000Z)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, etree.QName(ns, name))
    node.text = text
    return node


class UsernameTokenDigest:
    """The `wsse:Security` header of every request, as a zeep wsse plugin (apply/verify).

    A fresh random nonce and the current time for each request; `clock` and `nonces` are there
    for tests. Safe to share between threads: it keeps no state per request."""

    def __init__(
        self,
        username: str,
        auth_key: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonces: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.username = username
        self._auth_key = auth_key
        self._clock = clock
        self._nonces = nonces

    def __repr__(self) -> str:  # never the key, whatever prints this object
        return f"UsernameTokenDigest(username={self.username!r})"

    def security_header(self, nonce: bytes, created: datetime) -> etree._Element:
        """The header for one request created at `created` with `nonce`."""
        stamp = utc_stamp(created)
        security = etree.Element(etree.QName(WSSE_NS, "Security"), nsmap=NSMAP)
        timestamp = _sub(security, WSU_NS, "Timestamp")
        _sub(timestamp, WSU_NS, "Created", stamp)
        _sub(timestamp, WSU_NS, "Expires", utc_stamp(created + TIMESTAMP_TTL))
        token = _sub(security, WSSE_NS, "UsernameToken")
        _sub(token, WSSE_NS, "Username", self.username)
        password = _sub(token, WSSE_NS, "Password", password_digest(nonce, stamp, self._auth_key))
        password.set("Type", PASSWORD_DIGEST)
        encoded = base64.b64encode(nonce).decode("ascii")
        _sub(token, WSSE_NS, "Nonce", encoded).set("EncodingType", BASE64_BINARY)
        _sub(token, WSU_NS, "Created", stamp)
        return security

    # zeep's plugin interface (zeep.wsse): called on every outgoing envelope and every answer
    def apply(self, envelope: Any, headers: Any) -> tuple[Any, Any]:
        header = get_or_create_header(envelope)
        header.insert(0, self.security_header(self._nonces(NONCE_BYTES), self._clock()))
        return envelope, headers

    def verify(self, envelope: Any) -> None:
        """The EU signs nothing in its answers (a bare Timestamp): nothing to check."""
