"""The EPCIS event hash ID of CBV 2.0: `ni:///sha-256;{hex}?ver=CBV2.0` over a canonical
"pre-hash string" of the event, so that the same event, however it is written (key order,
URN or Digital Link identifiers, bare or URI vocabulary, time zone, trailing zeros), gets
the same ID. Capture gives it to events that come without an eventID (GS1 asks servers
to fill one in), and the hash chain records it for every captured event.

The pre-hash string, as the CBV 2.0 algorithm (GS1's "EPCIS event hash generator",
github.com/RalphTro/epcis-event-hash-generator) builds it:

- `eventType=` and the event's type, then its fields in the canonical order: eventTime,
  eventTimeZoneOffset, certificationInfo, parentID, epcList, inputEPCList, childEPCs,
  quantityList, childQuantityList, inputQuantityList, outputEPCList, outputQuantityList,
  action, transformationID, bizStep, disposition, persistentDisposition, readPoint,
  bizLocation, sensorElementList (each with its own order of children); then every other
  field (bizTransactionList, sourceList, destinationList, ilmd, user extensions) as one
  list sorted by its text. Field names are written once (`epcList`, `readPoint`), values
  as `key=value`, with no separators; the members of a list are sorted by their text.
- Values: whitespace trimmed; times in UTC with milliseconds, rounded half up
  (`2023-01-18T11:04:03.1415Z` gives `...03.142Z`); numbers without trailing zeros; CBV
  URNs (`urn:epcglobal:cbv:bizstep:receiving`) and bare CBV words (`receiving`, `in_transit`,
  `po`, `Temperature`) as their web URIs; CURIEs expanded with the document's @context and
  the EPCIS context's prefixes; EPC URNs (`urn:epc:id:sgtin:...`, `urn:epc:class:lgtin:...`,
  `urn:epc:idpat:sgtin:...`) and GS1 Digital Links as constrained canonical Digital Links
  (https://id.gs1.org, no query string, only the finest key level).
- Extension keys as `{namespace}localName`; recordTime, eventID, errorDeclaration, the
  event's own @context and comments are left out.

The published test vectors of the reference implementation are its definition in
practice; where they and its README's table differ (the vectors put parentID before
epcList, certificationInfo after the offset, and the transaction, source and destination
lists among the sorted remainder), this module follows the vectors
(tests/trace/test_epcis_hash.py checks them). Booleans are written `true`/`false`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"
DL_DOMAIN = "https://id.gs1.org"
# the prefixes the EPCIS 2.0 JSON-LD context defines
STANDARD_PREFIXES: dict[str, str] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": GS1_VOC,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
CBV_URNS = {
    "urn:epcglobal:cbv:bizstep:": CBV + "BizStep-",
    "urn:epcglobal:cbv:disp:": CBV + "Disp-",
    "urn:epcglobal:cbv:btt:": CBV + "BTT-",
    "urn:epcglobal:cbv:sdt:": CBV + "SDT-",
    "urn:epcglobal:cbv:er:": CBV + "ER-",
}
IGNORED = frozenset(
    {"type", "eventID", "recordTime", "errorDeclaration", "@context", "rdfs:comment", "comment"}
)
_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

Prefixes = Mapping[str, str]
Value = Callable[[Any, Prefixes], str]


# --- GS1 identifiers -------------------------------------------------------------------
def check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of a key without it (GTIN, GLN, SSCC, GSRN, ...)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _dl_escape(text: str) -> str:
    """Characters an EPC URN may carry raw but a Digital Link percent-encodes."""
    for char, code in (("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A")):
        text = text.replace(char, code)
    return text.replace("+", "%2B").replace(",", "%2C").replace(":", "%3A")


def _split(body: str, parts: int) -> list[str] | None:
    fields = body.split(".", parts - 1)
    if len(fields) != parts or not fields[0].isdigit() or not 6 <= len(fields[0]) <= 12:
        return None
    return fields


def _gtin(prefix: str, item_ref: str) -> str | None:
    """GTIN-14 from a company prefix and an indicator-led item reference (13 digits)."""
    if not item_ref.isdigit() or len(prefix) + len(item_ref) != 13:
        return None
    raw = item_ref[0] + prefix + item_ref[1:]
    return raw + check_digit(raw)


def _keyed(prefix: str, ref: str, length: int) -> str | None:
    """A GLN-style key (company prefix, reference, check digit) of `length` digits."""
    if not (ref == "" or ref.isdigit()) or len(prefix) + len(ref) != length - 1:
        return None
    return prefix + ref + check_digit(prefix + ref)


def _epc_urn(uri: str) -> str | None:
    """The canonical Digital Link of an EPC URN, EPC class or EPC pattern URI."""
    scheme, _, body = uri.partition(":")
    kind, _, rest = body.partition(":")
    if scheme != "urn" or kind != "epc":
        return None
    space, _, rest = rest.partition(":")
    name, _, value = rest.partition(":")
    if space == "class" and name == "lgtin":
        f = _split(value, 3)
        gtin = _gtin(f[0], f[1]) if f else None
        return f"{DL_DOMAIN}/01/{gtin}/10/{_dl_escape(f[2])}" if f and gtin and f[2] else None
    if space == "idpat":
        return _epc_pattern(name, value)
    if space != "id":
        return None
    return _epc_id(name, value)


def _epc_pattern(name: str, value: str) -> str | None:
    """An EPC pattern of a whole class (`...*`) as the Digital Link of its key."""
    if name == "itip":
        f = _split(value, 5)
        gtin = _gtin(f[0], f[1]) if f else None
        ok = f and gtin and f[2].isdigit() and f[3].isdigit() and f[4] == "*"
        return f"{DL_DOMAIN}/8006/{gtin}{f[2]}{f[3]}" if ok and f else None
    f = _split(value, 3)
    if not f or f[2] != "*":
        return None
    if name in ("sgtin", "upui"):
        gtin = _gtin(f[0], f[1])
        return f"{DL_DOMAIN}/01/{gtin}" if gtin else None
    if name == "cpi":
        return f"{DL_DOMAIN}/8010/{_dl_escape(f[0] + f[1])}"
    keys = {"grai": ("8003", "0"), "gdti": ("253", ""), "sgcn": ("255", "")}
    if name in keys:
        ai, lead = keys[name]
        key = _keyed(f[0], f[1], 13)
        return f"{DL_DOMAIN}/{ai}/{lead}{key}" if key else None
    return None


def _epc_id(name: str, value: str) -> str | None:
    if name in ("sgtin", "upui"):
        f = _split(value, 3)
        gtin = _gtin(f[0], f[1]) if f else None
        if not (f and gtin and f[2]):
            return None
        qualifier = "21" if name == "sgtin" else "235"
        return f"{DL_DOMAIN}/01/{gtin}/{qualifier}/{_dl_escape(f[2])}"
    if name == "sscc":
        f = _split(value, 2)
        if not f or not f[1].isdigit() or len(f[0]) + len(f[1]) != 17:
            return None
        raw = f[1][0] + f[0] + f[1][1:]
        return f"{DL_DOMAIN}/00/{raw}{check_digit(raw)}"
    if name in ("sgln", "grai", "gdti", "sgcn"):
        f = _split(value, 3)
        key = _keyed(f[0], f[1], 13) if f else None
        if not (f and key):
            return None
        extra = f[2]
        if name == "sgln":
            return f"{DL_DOMAIN}/414/{key}" + (f"/254/{_dl_escape(extra)}" if extra != "0" else "")
        ai, lead = {"grai": ("8003", "0"), "gdti": ("253", ""), "sgcn": ("255", "")}[name]
        return f"{DL_DOMAIN}/{ai}/{lead}{key}{_dl_escape(extra)}"
    if name in ("gsrn", "gsrnp", "gsin", "pgln"):
        length = {"gsrn": 18, "gsrnp": 18, "gsin": 17, "pgln": 13}[name]
        f = _split(value, 2)
        key = _keyed(f[0], f[1], length) if f else None
        ai = {"gsrn": "8018", "gsrnp": "8017", "gsin": "402", "pgln": "417"}[name]
        return f"{DL_DOMAIN}/{ai}/{key}" if key else None
    if name in ("giai", "ginc"):
        f = _split(value, 2)
        ai = "8004" if name == "giai" else "401"
        return f"{DL_DOMAIN}/{ai}/{f[0]}{_dl_escape(f[1])}" if f and f[1] else None
    if name == "cpi":
        f = _split(value, 3)
        if not f or not f[2].isdigit():
            return None
        return f"{DL_DOMAIN}/8010/{_dl_escape(f[0] + f[1])}/8011/{f[2]}"
    if name == "itip":
        f = _split(value, 5)
        gtin = _gtin(f[0], f[1]) if f else None
        if not (f and gtin and f[2].isdigit() and f[3].isdigit()):
            return None
        return f"{DL_DOMAIN}/8006/{gtin}{f[2]}{f[3]}/21/{_dl_escape(f[4])}"
    return None


# Digital Link primary keys (AI or short name) and the qualifiers the hash keeps
PRIMARY_KEYS = {
    "01": "01", "gtin": "01", "8006": "8006", "itip": "8006", "8010": "8010", "cpid": "8010",
    "414": "414", "gln": "414", "417": "417", "party": "417", "8017": "8017", "gsrnp": "8017",
    "8018": "8018", "gsrn": "8018", "255": "255", "gcn": "255", "00": "00", "sscc": "00",
    "253": "253", "gdti": "253", "401": "401", "ginc": "401", "402": "402", "gsin": "402",
    "8003": "8003", "grai": "8003", "8004": "8004", "giai": "8004",
}  # fmt: skip
QUALIFIERS = {"22": "22", "cpv": "22", "10": "10", "lot": "10", "21": "21", "ser": "21",
              "235": "235", "254": "254", "8011": "8011"}  # fmt: skip


def _digital_link(uri: str) -> str | None:
    """The constrained canonical form of a GS1 Digital Link: id.gs1.org, numeric AIs, no
    query string or fragment, GTIN-14, no CPV, the serial alone when both lot and serial."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    segments = parts.path.split("/")
    for i, segment in enumerate(segments[:-1]):
        ai = PRIMARY_KEYS.get(segment)
        if ai is None or not re.match(r"^\d{4}", segments[i + 1]):
            continue
        value = segments[i + 1]
        if ai == "01" and len(value) in (8, 12, 13) and value.isdigit():
            value = value.zfill(14)
        pairs: dict[str, str] = {}
        rest = [s for s in segments[i + 2 :] if s]
        for name, qualifier_value in zip(rest[::2], rest[1::2], strict=False):
            qualifier = QUALIFIERS.get(name)
            if qualifier is None:
                return None
            pairs[qualifier] = qualifier_value
        pairs.pop("22", None)
        if "21" in pairs:
            pairs.pop("10", None)
        tail = "".join(f"/{q}/{v}" for q, v in pairs.items())
        return f"{DL_DOMAIN}/{ai}/{value}{tail}"
    return None


def canonical_id(uri: str) -> str:
    """An identifier as the hash writes it: EPC URNs and Digital Links as constrained
    canonical Digital Links; anything else unchanged."""
    if uri.startswith("urn:epc:"):
        return _epc_urn(uri) or uri
    if uri.startswith(("http://", "https://")):
        return _digital_link(uri) or uri
    return uri


# --- values ----------------------------------------------------------------------------
def _time_parts(text: str) -> tuple[datetime, Decimal] | None:
    """An RFC 3339 date-time as whole seconds (aware) and the rest, in seconds. A leap
    second (:60) is the next second; the year 0000 is taken as 0001."""
    m = _TIME.match(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    zone = m.group(8)
    leap = second == 60
    try:
        if zone in ("Z", "z"):
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        at = datetime(max(year, 1), month, day, hour, minute, 59 if leap else second, tzinfo=tz)
    except ValueError:
        return None
    return at, Decimal(m.group(7) or "0") + (1 if leap else 0)


def _rounded(fraction: Decimal, per_second: int) -> int:
    return int((fraction * per_second).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 date-time in UTC, to the microsecond (rounded half up), kept within
    the years 1 to 9999; None if it is not one."""
    parts = _time_parts(text)
    if parts is None:
        return None
    at, fraction = parts
    try:
        return at.astimezone(UTC) + timedelta(microseconds=_rounded(fraction, 1_000_000))
    except OverflowError:
        return (datetime.max if at.year > 1 else datetime.min).replace(tzinfo=UTC)


def canonical_time(text: str) -> str:
    """A timestamp in UTC with milliseconds, the 4th decimal rounding the 3rd half up;
    text that is not an RFC 3339 date-time is kept as it is."""
    parts = _time_parts(text)
    if parts is None:
        return text.strip()
    at, fraction = parts
    try:
        at = at.astimezone(UTC) + timedelta(milliseconds=_rounded(fraction, 1000))
    except OverflowError:
        return text.strip()
    return at.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def canonical_number(value: int | float | Decimal | str) -> str:
    """A number without trailing zeros (1.0 -> 1, 0.3430 -> 0.343) and without exponent."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def expand_curie(text: str, prefixes: Prefixes) -> str:
    """`prefix:local` with a prefix the context defines, as the full IRI."""
    prefix, sep, local = text.partition(":")
    if sep and not local.startswith("//") and prefix in prefixes:
        return prefixes[prefix] + local
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return canonical_number(value)
    text = str(value).strip()
    return canonical_number(text) if _NUMBER.match(text) else text


def canonical_value(value: Any, prefixes: Prefixes) -> str:
    """A value as the hash writes it: trimmed, numbers without trailing zeros, CBV URNs as
    web URIs, CURIEs expanded, GS1 identifiers as canonical Digital Links."""
    text = _scalar(value)
    for urn, web in CBV_URNS.items():
        if text.startswith(urn):
            text = web + text[len(urn) :]
    return canonical_id(expand_curie(text, prefixes))


def _vocabulary(base: str) -> Value:
    """A CBV or GS1 vocabulary field: bare words are terms of `base`."""

    def value(raw: Any, prefixes: Prefixes) -> str:
        text = _scalar(raw)
        if text and ":" not in text:
            return base + text
        return canonical_value(text, prefixes)

    return value


def _time_value(raw: Any, prefixes: Prefixes) -> str:
    return canonical_time(str(raw))


# --- the pre-hash string ---------------------------------------------------------------
def extension_key(key: str, prefixes: Prefixes) -> str:
    """An extension field's name: `{namespace}localName` when its prefix is known."""
    prefix, sep, local = key.partition(":")
    if sep and prefix in prefixes and not local.startswith("//"):
        return "{" + prefixes[prefix] + "}" + local
    return key


def _generic(key: str, value: Any, prefixes: Prefixes) -> list[str]:
    """An extension field's strings: `key=value`, `key` followed by its sorted children,
    one string per member of a list."""
    name = extension_key(key, prefixes)
    if isinstance(value, list):
        return [s for item in value for s in _generic(key, item, prefixes)]
    if isinstance(value, dict):
        if "@value" in value:
            return _generic(key, value["@value"], prefixes)
        children = _children(value, prefixes, skip=frozenset({"@type", "@id"}))
        return [name + "".join(children)] if children else []
    text = canonical_value(value, prefixes)
    return [f"{name}={text}" if text else name]


def _children(obj: Mapping[str, Any], prefixes: Prefixes, skip: frozenset[str]) -> list[str]:
    out = [s for k, v in obj.items() if k not in skip for s in _generic(k, v, prefixes)]
    return sorted(out)


Order = tuple[tuple[str, Any], ...]
QUANTITY: Order = (
    ("epcClass", canonical_value),
    ("quantity", canonical_value),
    ("uom", canonical_value),
)
SENSOR_METADATA: Order = (
    ("time", _time_value),
    ("startTime", _time_value),
    ("endTime", _time_value),
    ("deviceID", canonical_value),
    ("deviceMetadata", canonical_value),
    ("rawData", canonical_value),
    ("dataProcessingMethod", canonical_value),
    ("bizRules", canonical_value),
)
SENSOR_REPORT: Order = (
    ("type", _vocabulary(GS1_VOC)),
    ("exception", _vocabulary(GS1_VOC)),
    ("deviceID", canonical_value),
    ("deviceMetadata", canonical_value),
    ("rawData", canonical_value),
    ("dataProcessingMethod", canonical_value),
    ("time", _time_value),
    ("microorganism", canonical_value),
    ("chemicalSubstance", canonical_value),
    ("value", canonical_value),
    ("component", _vocabulary(CBV + "Comp-")),
    ("stringValue", canonical_value),
    ("booleanValue", canonical_value),
    ("hexBinaryValue", canonical_value),
    ("uriValue", canonical_value),
    ("minValue", canonical_value),
    ("maxValue", canonical_value),
    ("meanValue", canonical_value),
    ("sDev", canonical_value),
    ("percRank", canonical_value),
    ("percValue", canonical_value),
    ("uom", canonical_value),
    ("coordinateReferenceSystem", canonical_value),
)


def _fields(obj: Mapping[str, Any], order: Order, prefixes: Prefixes) -> str:
    """An object's fields in `order`, then its extension fields, sorted."""
    out = []
    for key, how in order:
        if key not in obj:
            continue
        values = obj[key] if isinstance(obj[key], list) else [obj[key]]
        texts = sorted(f"{key}={t}" for t in (how(v, prefixes) for v in values) if t != "")
        out.append("".join(texts))
    known = {key for key, _ in order}
    extensions = {k: v for k, v in obj.items() if k not in known and ":" in k}
    return "".join(out) + "".join(_children(extensions, prefixes, skip=IGNORED))


def _epcs(name: str, values: Any, prefixes: Prefixes) -> str:
    items = sorted(f"epc={canonical_value(v, prefixes)}" for v in values or [])
    return name + "".join(items) if items else ""


def _quantities(name: str, values: Any, prefixes: Prefixes) -> str:
    items = sorted("quantityElement" + _fields(q, QUANTITY, prefixes) for q in values or [])
    return name + "".join(items) if items else ""


def _sensor_elements(values: Any, prefixes: Prefixes) -> str:
    elements = []
    for element in values or []:
        text = ""
        if isinstance(element.get("sensorMetadata"), dict):
            text += "sensorMetadata" + _fields(element["sensorMetadata"], SENSOR_METADATA, prefixes)
        reports = element.get("sensorReport") or []
        text += "".join(
            sorted("sensorReport" + _fields(r, SENSOR_REPORT, prefixes) for r in reports)
        )
        rest = {k: v for k, v in element.items() if k not in ("sensorMetadata", "sensorReport")}
        text += "".join(_children(rest, prefixes, skip=IGNORED))
        elements.append("sensorElement" + text)
    return "sensorElementList" + "".join(sorted(elements)) if elements else ""


def _typed_list(name: str, member: str, vocabulary: str, values: Any, prefixes: Prefixes) -> str:
    """bizTransactionList, sourceList, destinationList: `type=` (a CBV term) before the
    member's value, the members sorted."""
    items = []
    for item in values or []:
        text = ""
        if item.get("type"):
            text += "type=" + _vocabulary(vocabulary)(item["type"], prefixes)
        if member in item:
            text += f"{member}={canonical_value(item[member], prefixes)}"
        items.append(text)
    return name + "".join(sorted(items)) if items else ""


def _place(name: str, value: Any, prefixes: Prefixes) -> str:
    if not isinstance(value, dict):
        return ""
    text = _fields(value, (("id", canonical_value),), prefixes)
    return name + text if text else ""


def _persistent(value: Any, prefixes: Prefixes) -> str:
    if not isinstance(value, dict):
        return ""
    disp = _vocabulary(CBV + "Disp-")
    text = "".join(
        "".join(sorted(f"{key}={disp(v, prefixes)}" for v in value.get(key) or []))
        for key in ("set", "unset")
    )
    return "persistentDisposition" + text if text else ""


def _single(key: str, how: Value) -> Callable[[Any, Prefixes], str]:
    def text(value: Any, prefixes: Prefixes) -> str:
        values = value if isinstance(value, list) else [value]
        return "".join(sorted(f"{key}={how(v, prefixes)}" for v in values))

    return text


ORDERED: tuple[tuple[str, Callable[[Any, Prefixes], str]], ...] = (
    ("eventTime", _single("eventTime", _time_value)),
    ("eventTimeZoneOffset", _single("eventTimeZoneOffset", lambda v, p: str(v).strip())),
    ("certificationInfo", _single("certificationInfo", canonical_value)),
    ("parentID", _single("parentID", canonical_value)),
    ("epcList", lambda v, p: _epcs("epcList", v, p)),
    ("inputEPCList", lambda v, p: _epcs("inputEPCList", v, p)),
    ("childEPCs", lambda v, p: _epcs("childEPCs", v, p)),
    ("quantityList", lambda v, p: _quantities("quantityList", v, p)),
    ("childQuantityList", lambda v, p: _quantities("childQuantityList", v, p)),
    ("inputQuantityList", lambda v, p: _quantities("inputQuantityList", v, p)),
    ("outputEPCList", lambda v, p: _epcs("outputEPCList", v, p)),
    ("outputQuantityList", lambda v, p: _quantities("outputQuantityList", v, p)),
    ("action", _single("action", canonical_value)),
    ("transformationID", _single("transformationID", canonical_value)),
    ("bizStep", _single("bizStep", _vocabulary(CBV + "BizStep-"))),
    ("disposition", _single("disposition", _vocabulary(CBV + "Disp-"))),
    ("persistentDisposition", _persistent),
    ("readPoint", lambda v, p: _place("readPoint", v, p)),
    ("bizLocation", lambda v, p: _place("bizLocation", v, p)),
    ("sensorElementList", _sensor_elements),
)
TYPED_LISTS = {
    "bizTransactionList": ("bizTransaction", CBV + "BTT-"),
    "sourceList": ("source", CBV + "SDT-"),
    "destinationList": ("destination", CBV + "SDT-"),
}


def context_prefixes(*contexts: Any) -> dict[str, str]:
    """The prefixes CURIEs may use: the EPCIS context's and those each JSON-LD @context
    (a document's, an event's own) binds to a namespace string."""
    found = dict(STANDARD_PREFIXES)
    for context in contexts:
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, dict):
                found.update({k: v for k, v in item.items() if isinstance(v, str)})
    return found


def prehash(event: Mapping[str, Any], prefixes: Prefixes | None = None) -> str:
    """The event's canonical pre-hash string; `prefixes` from context_prefixes(...)."""
    if prefixes is None:
        prefixes = context_prefixes(event.get("@context"))
    ordered = "".join(how(event[key], prefixes) for key, how in ORDERED if key in event)
    done = {key for key, _ in ORDERED} | IGNORED
    rest: list[str] = []
    for key, value in event.items():
        if key in done:
            continue
        if key in TYPED_LISTS:
            member, vocabulary = TYPED_LISTS[key]
            text = _typed_list(key, member, vocabulary, value, prefixes)
            rest.extend([text] if text else [])
        elif key == "ilmd" and isinstance(value, dict):
            children = _children(value, prefixes, skip=IGNORED)
            rest.extend(["ilmd" + "".join(children)] if children else [])
        else:
            rest.extend(_generic(key, value, prefixes))
    return f"eventType={event.get('type', '')}" + ordered + "".join(sorted(rest))


def hash_id(text: str) -> str:
    """The `ni:` URI (RFC 6920) of a pre-hash string, as CBV 2.0 writes event hash IDs."""
    return f"ni:///sha-256;{hashlib.sha256(text.encode('utf-8')).hexdigest()}?ver=CBV2.0"


def event_hash(event: Mapping[str, Any], prefixes: Prefixes | None = None) -> str:
    """The event's hash ID: `ni:///sha-256;{hex}?ver=CBV2.0`."""
    return hash_id(prehash(event, prefixes))


def event_hashes(document: Mapping[str, Any]) -> list[str]:
    """The hash IDs of an EPCISDocument's (or EPCISQueryDocument's) events, in order."""
    body = document.get("epcisBody") or {}
    events: Iterable[Any] = body.get("eventList") or (
        (body.get("queryResults") or {}).get("resultsBody", {}).get("eventList") or []
    )
    doc_prefixes = context_prefixes(document.get("@context"))
    out = []
    for event in events:
        own = event.get("@context")
        prefixes = {**doc_prefixes, **context_prefixes(own)} if own else doc_prefixes
        out.append(event_hash(event, prefixes))
    return out
