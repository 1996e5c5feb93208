"""The WS-Security header as the EU specifies it: a UsernameToken whose PasswordDigest is
Base64(SHA-1(nonce + created + key)), a Nonce in Base64, a Created, and a Timestamp. Pure
unit tests: no server, no schemas."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

from lxml import etree
from zeep.wsse.username import UsernameToken

from coffeetrace.euis.ratelimit import CallLimiter
from coffeetrace.euis.security import UsernameTokenDigest, password_digest, utc_stamp

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NONCE = bytes(range(16))
CREATED = datetime(2026, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)
KEY = "8f1c5e0b-EU-authentication-key"


def _expected(nonce: bytes, created: str, key: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + key.encode()).digest()).decode()


def test_the_digest_of_a_known_vector() -> None:
    created = "2026-01-15T10:00:00.123Z"
    digest = password_digest(NONCE, created, KEY)
    assert digest == _expected(NONCE, created, KEY)
    assert len(base64.b64decode(digest)) == 20  # SHA-1
    # the nonce's raw bytes are hashed, not its Base64 text
    assert digest != _expected(base64.b64encode(NONCE), created, KEY)
    # and an implementation apart from ours agrees: zeep's own UsernameToken (which takes the
    # nonce as text, so an ASCII one)
    ascii_nonce = "0123456789abcdef"
    zeep_token = UsernameToken(
        "user", KEY, use_digest=True, nonce=ascii_nonce, created=CREATED.replace(microsecond=0)
    )
    zeep_password, _zeep_nonce, zeep_created = zeep_token._create_password_digest()
    assert zeep_password.text == password_digest(ascii_nonce.encode(), zeep_created.text, KEY)


def test_the_header_holds_token_nonce_created_and_timestamp() -> None:
    token = UsernameTokenDigest("ct-user", KEY)
    header = token.security_header(NONCE, CREATED)
    assert header.tag == f"{{{WSSE}}}Security"
    stamp = "2026-01-15T10:00:00.123Z"
    assert header.findtext(f"{{{WSU}}}Timestamp/{{{WSU}}}Created") == stamp
    assert header.findtext(f"{{{WSU}}}Timestamp/{{{WSU}}}Expires") == "2026-01-15T10:05:00.123Z"
    user = header.find(f"{{{WSSE}}}UsernameToken")
    assert user is not None
    assert user.findtext(f"{{{WSSE}}}Username") == "ct-user"
    password = user.find(f"{{{WSSE}}}Password")
    assert password is not None
    assert password.get("Type") == (
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
        "#PasswordDigest"
    )
    assert password.text == _expected(NONCE, stamp, KEY)
    nonce = user.find(f"{{{WSSE}}}Nonce")
    assert nonce is not None and base64.b64decode(nonce.text or "") == NONCE
    assert nonce.get("EncodingType", "").endswith("#Base64Binary")
    assert user.findtext(f"{{{WSU}}}Created") == stamp
    assert KEY.encode() not in etree.tostring(header)


def test_every_request_gets_its_own_nonce_and_time() -> None:
    times = iter([CREATED, CREATED + timedelta(seconds=1)])
    token = UsernameTokenDigest("ct-user", KEY, clock=lambda: next(times))
    nonces = []
    for _ in range(2):
        envelope = etree.Element(f"{{{SOAP}}}Envelope")
        etree.SubElement(envelope, f"{{{SOAP}}}Body")
        token.apply(envelope, {})
        header = envelope.find(f"{{{SOAP}}}Header")
        assert header is not None and header[0].tag == f"{{{WSSE}}}Security"
        nonces.append(header.findtext(f".//{{{WSSE}}}Nonce"))
    assert nonces[0] != nonces[1]
    assert KEY not in repr(token)


def test_created_is_utc_with_milliseconds() -> None:
    saigon = timezone(timedelta(hours=7))
    assert utc_stamp(datetime(2026, 1, 15, 17, 0, 0, 5000, tzinfo=saigon)) == (
        "2026-01-15T10:00:00.005Z"
    )


def test_the_limiter_turns_a_rate_into_slots_and_a_window() -> None:
    five = CallLimiter(5)
    assert (five.slots, five.window_s) == (5, 1.0)
    slow = CallLimiter(0.5)
    assert (slow.slots, slow.window_s) == (1, 2.0)
    odd = CallLimiter(2.5)
    assert (odd.slots, odd.window_s) == (2, 0.8)
