"""GS1 Digital Link parts of the resolver: validating identifiers and the linkset.

Link types follow the GS1 Web Vocabulary; the linkset is RFC 9264 JSON.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from biip import ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gtin import Gtin
from fastapi import Path

from coffeetrace.errors import ValidationFailed

GS1_VOC = "https://gs1.org/voc/"
LINKSET_TYPE = "application/linkset+json"

# GTIN-8, -12, -13 or -14; the check digit is the schema's `format: gtin`
GTIN_PATTERN = r"^(?:[0-9]{8}|[0-9]{12,14})$"
# GS1 AI (10), batch/lot: 1 to 20 characters of the GS1 AI encodable character set 82
# (biip's pattern for the AI); lots made here use the narrower set of their column
LOT_PATTERN = r'^[!"%-?A-Z_a-z]{1,20}$'
GtinPath = Annotated[
    str,
    Path(
        pattern=GTIN_PATTERN,
        json_schema_extra={"format": "gtin"},
        description="GTIN-8, -12, -13 or -14 with a valid GS1 check digit",
    ),
]
LotPath = Annotated[
    str,
    Path(
        pattern=LOT_PATTERN,
        description="Batch/lot (GS1 AI 10): 1 to 20 of the GS1 character set 82"
        " (letters, digits and !\"%&'()*+,-./:;<=>?_), percent-encoded in the URI",
    ),
]


def check_gtin(gtin: str) -> str:
    """The GTIN as 14 digits; ValidationFailed naming the problem (length, check digit...)."""
    try:
        parsed = Gtin.parse(gtin)
    except ParseError as exc:
        raise ValidationFailed(f"invalid GTIN {gtin!r}: {exc}", field="gtin", gtin=gtin) from None
    return parsed.as_gtin_14()


def check_digital_link(gtin: str, lot: str) -> str:
    """Validate a `/01/{gtin}/10/{lot}` path with biip; returns the GTIN-14."""
    gtin14 = check_gtin(gtin)
    try:
        GS1DigitalLinkURI.parse(f"https://id.invalid/01/{gtin14}/10/{quote(lot, safe='')}")
    except ParseError as exc:
        raise ValidationFailed(
            f"invalid Digital Link batch/lot {lot!r}: {exc}", field="lot"
        ) from None
    return gtin14


def links(base: str, public_id: str) -> dict[str, dict[str, Any]]:
    """The link types this resolver offers for a lot, by GS1 link type."""
    lot = f"{base}/l/{public_id}"
    return {
        "gs1:pip": {
            "href": lot,
            "title": "Provenance page / Trang nguồn gốc",
            "type": "text/html",
            "hreflang": ["vi", "en"],
        },
        "gs1:traceability": {
            "href": lot,
            "title": "Signed provenance document",
            "type": "application/json",
        },
        "gs1:epcis": {
            "href": f"{lot}/epcis",
            "title": "EPCIS 2.0 events",
            "type": "application/ld+json",
        },
        "gs1:verificationService": {
            "href": f"{lot}/verify",
            "title": "Verify chain and signature",
            "type": "application/json",
        },
    }


def linkset(anchor: str, base: str, public_id: str) -> dict[str, Any]:
    """RFC 9264 JSON linkset: link relation types as full GS1 vocabulary URIs."""
    entry: dict[str, Any] = {"anchor": anchor}
    offered = links(base, public_id)
    entry[GS1_VOC + "defaultLink"] = [offered["gs1:pip"]]
    for link_type, target in offered.items():
        entry[GS1_VOC + link_type.removeprefix("gs1:")] = [target]
    return {"linkset": [entry]}


def link_header(anchor: str, base: str, public_id: str) -> str:
    """`Link:` header pointing at the linkset and the default link, as GS1 resolvers do."""
    page = f"{base}/l/{public_id}"
    return (
        f'<{anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET_TYPE}", '
        f'<{page}>; rel="{GS1_VOC}defaultLink"; hreflang="vi"; type="text/html", '
        f'<{page}/epcis>; rel="{GS1_VOC}epcis"; type="application/ld+json"'
    )
