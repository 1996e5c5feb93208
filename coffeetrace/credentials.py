"""Secrets issued to devices and API clients, and their hashes.

Device credentials are hashed in Mosquitto's own PBKDF2-SHA512 format (`$7$...`), so
`coffeetrace broker-config` can write the broker's password file from the registry
without ever knowing a plaintext. The tokens are 128-bit random values, so the
iteration count (Mosquitto's default, 101) is not what protects them; their entropy is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MOSQUITTO_ITERATIONS = 101


def new_secret(nbytes: int = 16) -> str:
    """A random URL-safe token (128 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def new_public_id() -> str:
    """A random, non-enumerable 128-bit public identifier (26 chars, base32 lower case)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS
) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    salt = base64.b64decode(salt_b64)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations), 64)
    return hmac.compare_digest(base64.b64encode(digest).decode(), digest_b64)


@dataclass(frozen=True)
class DeviceSecret:
    """A device's new broker password and its hash in Mosquitto's `$7$` format (what the
    registry stores; `coffeetrace broker-config` and the dynamic security file take it as
    is). The password is shown once and never stored."""

    password: str
    hash: str


def new_device_secret() -> DeviceSecret:
    password = new_secret()
    return DeviceSecret(password=password, hash=mosquitto_hash(password))
