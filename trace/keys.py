"""Each cooperative's Ed25519 signing keys, kept in files outside the database.

Layout under the key directory (COFFEETRACE_KEYS_DIR, default {data_dir}/keys; 0700):

    {cooperative_id}/keys.json      the cooperative's public keys, oldest first:
                                    [{"key_id", "public_key" (base64url raw 32 bytes),
                                      "valid_from", "valid_until" | null}]
    {cooperative_id}/{key_id}.pem   the private key of the active key (0600, PKCS#8)

The newest key without `valid_until` is the active one. `rotate` makes a new key active,
closes the old one's validity and deletes its private key: signatures made with it still
verify against keys.json, but nothing can sign with it again. A key is generated on a
cooperative's first signature. Private keys are never logged, returned or stored in the
database; someone with write access to the database alone cannot sign.

What is signed is always `domain || canonical bytes` (see `sign`), so that a signature made
for one purpose (an event hash) can never be presented as another (a checkpoint).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coffeetrace.errors import ConfigError

log = logging.getLogger(__name__)
ALGORITHM = "Ed25519"
INDEX = "keys.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_raw: bytes) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class _Active:
    key_id: str
    private: Ed25519PrivateKey


class KeyRing:
    """The cooperatives' keys under one directory; safe to share between threads, and
    between processes (a file lock serialises key creation and rotation)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, _Active]] = {}  # coop -> (index mtime, key)

    # --- files ---------------------------------------------------------------
    def _dir(self, cooperative_id: UUID | str) -> Path:
        return self.root / str(UUID(str(cooperative_id)))

    @contextlib.contextmanager
    def locked(self, cooperative_id: UUID | str) -> Iterator[Path]:
        folder = self._dir(cooperative_id)
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the key directory {self.root}: {exc.strerror}",
                setting="COFFEETRACE_KEYS_DIR",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield folder
        finally:
            os.close(fd)

    def public_keys(self, cooperative_id: UUID | str) -> list[dict[str, Any]]:
        """The cooperative's keys, oldest first (empty before its first signature)."""
        path = self._dir(cooperative_id) / INDEX
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is not readable JSON: {exc}") from exc
        if not isinstance(data, list):
            raise ConfigError(f"{path} must hold a JSON list of keys")
        return data

    @staticmethod
    def _write_index(folder: Path, keys: list[dict[str, Any]]) -> None:
        tmp = folder / (INDEX + ".tmp")
        tmp.write_text(json.dumps(keys, indent=1) + "\n")
        os.replace(tmp, folder / INDEX)  # atomic: readers see the old or the new list

    @staticmethod
    def _new_key(folder: Path, keys: list[dict[str, Any]]) -> str:
        private = Ed25519PrivateKey.generate()
        raw = _raw_public(private.public_key())
        kid = key_id(raw)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(folder / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        keys.append(
            {"key_id": kid, "public_key": b64url(raw), "valid_from": _now(), "valid_until": None}
        )
        return kid

    def _load_active(self, cooperative_id: UUID | str) -> _Active:
        folder = self._dir(cooperative_id)
        index = folder / INDEX
        coop = str(UUID(str(cooperative_id)))
        try:
            mtime = index.stat().st_mtime
        except FileNotFoundError:
            mtime = -1.0
        cached = self._active.get(coop)
        if cached and cached[0] == mtime:
            return cached[1]
        with self.locked(cooperative_id):
            keys = self.public_keys(cooperative_id)
            current = [k for k in keys if k.get("valid_until") is None]
            if not current:
                kid = self._new_key(folder, keys)
                self._write_index(folder, keys)
                log.info("signing_key_created cooperative_id=%s key_id=%s", coop, kid)
            else:
                kid = current[-1]["key_id"]
            mtime = index.stat().st_mtime
        pem_path = folder / f"{kid}.pem"
        try:
            private = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the private key {pem_path} of the active key {kid} is missing or unreadable",
                setting="COFFEETRACE_KEYS_DIR",
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{pem_path} does not hold an Ed25519 key")
        active = _Active(kid, private)
        with self._lock:
            self._active[coop] = (mtime, active)
        return active

    # --- signing ---------------------------------------------------------------
    def sign(self, cooperative_id: UUID | str, domain: str, message: bytes) -> dict[str, str]:
        """{"algorithm": "Ed25519", "key_id", "value": base64url} over
        `domain.encode() + b"\\n" + message` with the cooperative's active key."""
        active = self._load_active(cooperative_id)
        value = active.private.sign(domain.encode() + b"\n" + message)
        return {"algorithm": ALGORITHM, "key_id": active.key_id, "value": b64url(value)}

    def verify(
        self, cooperative_id: UUID | str, domain: str, message: bytes, signature: Any
    ) -> str | None:
        """None when `signature` is a valid signature of one of the cooperative's keys over
        the message, else the reason it is not."""
        if not isinstance(signature, dict):
            return "no signature"
        keys = {k["key_id"]: k for k in self.public_keys(cooperative_id)}
        key = keys.get(str(signature.get("key_id")))
        if key is None:
            return f"key {signature.get('key_id')!r} is not one of the cooperative's keys"
        return verify_with(key["public_key"], domain, message, signature)

    def rotate(self, cooperative_id: UUID | str) -> dict[str, Any]:
        """Make a new active key; returns {"retired": key_id | None, "active": key_id}."""
        with self.locked(cooperative_id) as folder:
            keys = self.public_keys(cooperative_id)
            retired = None
            for k in keys:
                if k.get("valid_until") is None:
                    k["valid_until"] = _now()
                    retired = k["key_id"]
                    with contextlib.suppress(FileNotFoundError):
                        (folder / f"{retired}.pem").unlink()
            kid = self._new_key(folder, keys)
            self._write_index(folder, keys)
        with self._lock:
            self._active.pop(str(UUID(str(cooperative_id))), None)
        log.info(
            "signing_key_rotated cooperative_id=%s retired=%s active=%s",
            cooperative_id,
            retired,
            kid,
        )
        return {"retired": retired, "active": kid}


def verify_with(public_key_b64: str, domain: str, message: bytes, signature: Any) -> str | None:
    """None when signature["value"] is a valid Ed25519 signature by that public key."""
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        return "not an Ed25519 signature"
    try:
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(public_key_b64))
        public.verify(b64url_decode(str(signature.get("value"))), domain.encode() + b"\n" + message)
    except (InvalidSignature, ValueError, binascii.Error):
        return "the signature does not match"
    return None
