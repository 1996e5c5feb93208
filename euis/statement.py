"""A statement to file: a `SubmitDdsRequest` document (as `coffeetrace export dds` writes it),
read safely and checked against the EU's schema before anything is sent.

The schemas are the copies in `wsdl/` (byte-identical to the EU's 8.2.1 release as kept in
../shared/reference/eudr/, which a test checks), loaded once, offline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import as_file, files

from lxml import etree

from coffeetrace.errors import ValidationFailed

DDS_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/due-diligence-statement/v3"
SUBMIT_REQUEST = etree.QName(DDS_NS, "SubmitDdsRequest").text
DDS_SCHEMA = "xsd4-due-diligence-statement-v3.xsd"
# The 8.2.1 schema allows 50 characters, the EU's reference document 35 (RULES.md): the
# stricter one holds here, so that the EU cannot refuse what was checked.
INTERNAL_REFERENCE_MAX = 35


def safe_parser() -> etree.XMLParser:
    """No DTDs, entities or network; huge text nodes allowed (a producer's base64 GeoJSON
    may be megabytes, a statement up to 25 MB of geolocation)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


@cache
def dds_schema() -> etree.XMLSchema:
    """The DDS service's schema (and what it imports), from the package."""
    with as_file(files("coffeetrace.euis").joinpath("wsdl", DDS_SCHEMA)) as path:
        return etree.XMLSchema(etree.parse(str(path), safe_parser()))


@dataclass(frozen=True)
class StatementDocument:
    """A schema-valid SubmitDdsRequest and what coffeetrace records about it."""

    xml: bytes = field(repr=False)
    root: etree._Element = field(repr=False, compare=False)
    operator_role: str
    activity_type: str
    internal_reference: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.xml).hexdigest()


def _child_text(node: etree._Element, path: str) -> str | None:
    found = node.find(path, {"dds": DDS_NS})
    text = found.text.strip() if found is not None and found.text else ""
    return text or None


def read_statement(xml: bytes, *, source: str = "the statement") -> StatementDocument:
    """Parse and check a SubmitDdsRequest; ValidationFailed names `source`, the line and the
    schema's complaint."""
    try:
        root = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed(f"{source} is not well-formed XML: {exc}", source=source) from None
    if root.tag != SUBMIT_REQUEST:
        raise ValidationFailed(
            f"{source} is a {etree.QName(root).localname} document, not a SubmitDdsRequest of "
            f"the EU's V3 DDS schema ({DDS_NS}); write it with `coffeetrace export dds`",
            source=source,
        )
    schema = dds_schema()
    if not schema.validate(root):
        problems = [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5]]
        raise ValidationFailed(
            f"{source} does not follow the EU's DDS schema: " + "; ".join(problems),
            source=source,
            problems=problems,
        )
    internal_reference = _child_text(root, "dds:statement/dds:internalReferenceNumber")
    if internal_reference and len(internal_reference) > INTERNAL_REFERENCE_MAX:
        raise ValidationFailed(
            f"{source}: the internal reference {internal_reference!r} is longer than the "
            f"{INTERNAL_REFERENCE_MAX} characters the EU's API reference allows",
            source=source,
        )
    operator_role = _child_text(root, "dds:operatorRole")
    activity_type = _child_text(root, "dds:statement/dds:activityType")
    assert operator_role and activity_type  # both required by the schema just checked
    return StatementDocument(
        xml=xml,
        root=root,
        operator_role=operator_role,
        activity_type=activity_type,
        internal_reference=internal_reference,
    )
