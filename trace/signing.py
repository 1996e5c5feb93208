"""The Ed25519 key that signs provenance documents.

The key comes from settings.signing_key (PEM, or base64 of the raw 32-byte private
key); when that is empty, one is generated on first use and kept in
{data_dir}/signing-key.pem (mode 0600), so the embedded run keeps its key across restarts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace.trace.jsonutil import canonical_json

log = logging.getLogger(__name__)
KEY_FILE = "signing-key.pem"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _from_setting(value: str) -> Ed25519PrivateKey:
    try:
        if "BEGIN" in value:
            key = serialization.load_pem_private_key(value.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.b64decode(value.strip() + "=" * (-len(value.strip()) % 4), altchars=b"-_")
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(
            "COFFEETRACE_SIGNING_KEY must be an Ed25519 private key: PEM, or"
            f" base64 of the raw 32 bytes ({exc})",
            setting="COFFEETRACE_SIGNING_KEY",
        ) from exc


def _from_file(data_dir: Path) -> Ed25519PrivateKey:
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:  # O_EXCL: two processes starting together keep the first key written
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            log.info("signing_key_generated path=%s", path)
        except FileExistsError:
            pass
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} does not hold an Ed25519 key", setting="COFFEETRACE_DATA_DIR")
    return key


def private_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.signing_key:
        return _from_setting(settings.signing_key)
    return _from_file(settings.data_dir)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_key_document(settings: Settings) -> dict[str, Any]:
    """For /.well-known/coffeetrace-signing-key: {"algorithm": "Ed25519", "key_id": str,
    "public_key": base64url raw 32 bytes (no padding), "public_key_pem": str,
    "signed": "canonical JSON (sorted keys, no whitespace, UTF-8) of the document"}."""
    public = private_key(settings).public_key()
    raw = _raw_public(public)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {
        "algorithm": "Ed25519",
        "key_id": key_id(raw),
        "public_key": b64url(raw),
        "public_key_pem": pem,
        "signed": "canonical JSON (sorted keys, no whitespace, UTF-8) of the document",
    }


def sign(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """{"algorithm": "Ed25519", "key_id", "value": base64url signature} over the document."""
    key = private_key(settings)
    return {
        "algorithm": "Ed25519",
        "key_id": key_id(_raw_public(key.public_key())),
        "value": b64url(key.sign(canonical_json(document))),
    }


def verify_signature(document: dict[str, Any], signature_b64: str, public_key_b64: str) -> bool:
    """True when the signature matches the canonical JSON of document."""
    try:
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(public_key_b64))
        public.verify(b64url_decode(signature_b64), canonical_json(document))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
