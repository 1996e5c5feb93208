"""The signed public provenance document and the signing key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace.trace import provenance, signing
from tests.trace.chain import build_chain


def test_document_is_signed_and_public_only(conn: psycopg.Connection, settings: Settings) -> None:
    built = build_chain(conn)
    result = provenance.provenance(conn, built["packed"]["id"], settings=settings)
    doc, sig = result["document"], result["signature"]
    key = signing.public_key_document(settings)
    assert sig["algorithm"] == "Ed25519" and sig["key_id"] == key["key_id"]
    assert signing.verify_signature(doc, sig["value"], key["public_key"])
    tampered = json.loads(json.dumps(doc))
    tampered["trees"][0]["share"] = 0.99
    assert not signing.verify_signature(tampered, sig["value"], key["public_key"])
    text = json.dumps(doc, ensure_ascii=False)
    for private in ("Nguyễn Văn A", "+84912345678", "079123456789", "coordinates"):
        assert private not in text
    assert doc["lot"]["gtin"] == "08930000000033" and doc["lot"]["code"] == "PK-1"
    farms = {f["code"]: f for f in doc["farms"]}
    assert farms[built["world"].farm["code"]]["display_name"] == "Farm Ea Tu"  # consented
    assert farms["F-OTHER"]["display_name"] is None  # not consented
    assert sum(t["share"] for t in doc["trees"]) == pytest.approx(1.0, abs=1e-8)
    assert {s["step"] for s in doc["steps"]} >= {"drying", "grading", "blending", "packing"}
    assert len(doc["chain"]["events"]) == 9


def test_generated_key_is_kept_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    first = signing.public_key_document(settings)
    key_file = tmp_path / "d" / signing.KEY_FILE
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    assert signing.public_key_document(settings) == first
    assert len(base64.urlsafe_b64decode(first["public_key"] + "=")) == 32


def test_configured_key_wins_and_bad_keys_name_the_setting(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = signing.b64url(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    for value in (pem, base64.b64encode(raw).decode()):
        s = Settings(data_dir=tmp_path, signing_key=value)
        assert signing.public_key_document(s)["public_key"] == public
    assert not (tmp_path / signing.KEY_FILE).exists()
    with pytest.raises(ConfigError) as exc:
        signing.public_key_document(Settings(data_dir=tmp_path, signing_key="not a key"))
    assert exc.value.details["setting"] == "COFFEETRACE_SIGNING_KEY"
