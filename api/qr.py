"""QR codes for lots and tree tags, carrying GS1 Digital Link or short coffeetrace URIs.

Printed on jute or paper bags, codes get scuffed and stretched: error correction Q
(boosted to H when the symbol size allows) and the full 4-module quiet zone.
"""

from __future__ import annotations

import io
from typing import Any, Literal
from urllib.parse import quote

import segno

QUIET_ZONE = 4
ERROR_LEVEL = "q"


def lot_uri(base_url: str, lot: dict[str, Any]) -> str:
    """Digital Link `/01/{gtin}/10/{code}` when the product has a GTIN, else `/l/{public_id}`."""
    base = base_url.rstrip("/")
    if lot.get("gtin"):
        return f"{base}/01/{lot['gtin']}/10/{quote(lot['code'], safe='')}"
    return f"{base}/l/{lot['public_id']}"


def tree_uri(base_url: str, public_id: str) -> str:
    return f"{base_url.rstrip('/')}/t/{public_id}"


def make(uri: str) -> segno.QRCode:
    return segno.make(uri, error=ERROR_LEVEL, boost_error=True, micro=False)


def render(uri: str, kind: Literal["png", "svg"], *, scale: int = 8) -> bytes:
    """The QR code as PNG or SVG bytes (dark on white, quiet zone included)."""
    buf = io.BytesIO()
    code = make(uri)
    if kind == "svg":
        code.save(
            buf,
            kind="svg",
            scale=scale,
            border=QUIET_ZONE,
            xmldecl=False,
            svgclass=None,
            lineclass=None,
            title=uri,
        )
    else:
        code.save(buf, kind="png", scale=scale, border=QUIET_ZONE)
    return buf.getvalue()


Format = Literal["png", "svg"]
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
