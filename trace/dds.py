"""EUDR due diligence statements: the V3 `SubmitDdsRequest` of a lot, as the importer or
exporter files it with the EU Information System, as XML valid against the EU's schemas
(release 8.2.1) and as JSON of the same content (`build_dds`, `to_xml`).

What a statement says of the lot:
- one commodity per product kind the lot's kilograms reach it as (blends and packed lots
  are looked through, dds.sql's `dds_commodity_plots`), with its HS heading (`HS_HEADINGS`),
  a description of the goods and the net weight in kg (the lot's, by kilogram share);
- its producers, each with its production country and the base64 GeoJSON of its plots by
  the EU's rules (eudr.plot_features): the owner's name where the farm consented to give
  it to the authorities (farm_private.authority_consent), else the plot's cooperative as
  the producer group (`producer_of`); the public page shows neither (api/pagedata.py
  never reads farm_private);
- who files and how (`Filing`): the operator role, the activity, the represented operator
  with its identifiers (EORI, VAT, ...), the country of activity and of border crossing,
  `geoLocationConfidential`, grouped declarations.

The EU system's limits (`Limits`: producers per commodity and per statement, commodities
per statement, 25 MB of geolocation) are kept by splitting into several commodities and
statements; the document's "split" says how and why. docs/eudr.md lists what is assumed.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

from lxml import etree

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import dds_references, eudr
from coffeetrace.trace import queries as q
from coffeetrace.trace.lot_lookup import lot_by_id

SQL = load_queries("coffeetrace.trace", "dds.sql")

DDS_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/due-diligence-statement/v3"
COMMON_NS = "http://ec.europa.eu/tracesnt/certificate/eudr/common/v3"
SCHEMA_FILE = "xsd4-due-diligence-statement-v3.xsd"  # the entry point of the EU's XSDs

ACTIVITIES = ("IMPORT", "EXPORT", "DOMESTIC")
ROLES = ("OPERATOR", "REPRESENTATIVE_OPERATOR")
IDENTIFIER_TYPES = (
    "eori",
    "vat",
    "gln",
    "tin",
    "cbr",
    "cin",
    "duns",
    "comp_num",
    "comp_reg",
    "oni",
)
# EuropeanCountryType of the common schema: the member states and Northern Ireland
# fmt: off
EU_COUNTRIES = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
))
# fmt: on
# A step of one of these names decaffeinates what passes through it. No deployment records
# one yet: add it to COFFEETRACE_STEP_MAX_YIELD to record it.
DECAF_STEPS = ("decaffeination", "decaffeinating")

# HS headings (Annex I of Regulation 2023/1115; RULES.md). Coffee cherries, fresh or
# dried, and parchment are "coffee, not roasted" to HS heading 09.01's notes: 0901 11.
HS_HEADINGS: dict[tuple[str, bool], str] = {
    ("cherry", False): "090111",
    ("dried_cherry", False): "090111",
    ("green", False): "090111",
    ("green", True): "090112",
    ("roasted", False): "090121",
    ("roasted", True): "090122",
}
DESCRIPTIONS: dict[tuple[str, bool], str] = {
    ("cherry", False): "Coffee cherries, fresh, not roasted, not decaffeinated",
    ("dried_cherry", False): "Coffee cherries, dried, not roasted, not decaffeinated",
    ("green", False): "Green coffee, not roasted, not decaffeinated",
    ("green", True): "Green coffee, decaffeinated, not roasted",
    ("roasted", False): "Roasted coffee, not decaffeinated",
    ("roasted", True): "Roasted coffee, decaffeinated",
}

EORI = re.compile(r"^[A-Z]{2}[A-Za-z0-9]{1,15}$")
REFERENCE_NUMBER = re.compile(r"^[A-Za-z0-9]{1,14}$")
EMAIL = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
INTERNAL_REFERENCE_MAX = 35  # the document's limit; the 8.2.1 XSD allows 50
DESCRIPTION_MAX = 150
PRODUCER_NAME_MAX = 500
KG = Decimal("0.001")
NET_WEIGHT_MAX = Decimal("9999999999.999999")
_COLLECTION_HEAD = '{"type":"FeatureCollection","features":['
_COLLECTION_TAIL = "]}"


@dataclass(frozen=True)
class Limits:
    """The EU system's limits on one statement (RULES.md, §10.3)."""

    producers_per_commodity: int = 1_000
    producers_per_statement: int = 10_000
    commodities_per_statement: int = 100  # §10.3; the 8.2.1 XSD allows 200
    # 25 MB, counted on the base64 text that is sent (larger than the GeoJSON it holds)
    geolocation_bytes_per_statement: int = 25_000_000
    grouped_declarations: int = 2_000


@dataclass(frozen=True)
class Address:
    country: str
    street: str
    postal_code: str
    city: str
    full_address: str | None = None


@dataclass(frozen=True)
class EconomicOperator:
    """An operator's identification (EconomicOperatorIdentificationType): identifiers are
    (type, value) pairs, type one of IDENTIFIER_TYPES ("eori", "vat", ...)."""

    name: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    email: str | None = None
    phone: str | None = None
    address: Address | None = None

    @property
    def eori(self) -> str | None:
        return next((v for t, v in self.identifiers if t == "eori"), None)


@dataclass(frozen=True)
class Filing:
    """Who files the statement and how. No organisation holds these facts yet (an EORI, a
    role, an activity): the caller gives them. `role` None: REPRESENTATIVE_OPERATOR when
    `represented` is given, else OPERATOR. `border_cross_country` None: the country of
    activity for IMPORT and EXPORT. `internal_reference` None: the lot's code. `grouped`:
    reference numbers of statements to group (groupedDeclarations)."""

    activity: str = "IMPORT"
    role: str | None = None
    operator: EconomicOperator = field(default_factory=EconomicOperator)
    represented: EconomicOperator | None = None
    country_of_activity: str | None = None
    border_cross_country: str | None = None
    geolocation_confidential: bool = False
    internal_reference: str | None = None
    comment: str | None = None
    grouped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Producer:
    """One producer entry of a commodity: a name, a country and the base64 GeoJSON
    FeatureCollection of its plots; `kg` its share of the commodity's net weight."""

    name: str
    country: str
    geojson: str
    kg: Decimal
    plots: tuple[str, ...]
    named: bool  # the owner's legal name (authority consent), else a producer group


@dataclass(frozen=True)
class Commodity:
    kind: str
    decaffeinated: bool
    hs_heading: str
    description: str
    net_weight: Decimal
    producers: tuple[Producer, ...]


@dataclass
class Part:
    """A commodity's producers in one statement (all of them unless the limits split it)."""

    commodity: Commodity
    producers: list[Producer] = field(default_factory=list)

    @property
    def geolocation_bytes(self) -> int:
        return sum(len(p.geojson) for p in self.producers)


# --- the filing -----------------------------------------------------------------------


def _country(value: str | None, field_name: str) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in EU_COUNTRIES:
        raise ValidationFailed(
            f"{field_name} must be an EU member state's ISO code (or XI), not {value!r}",
            field=field_name,
        )
    return code


def _text(value: str | None, field_name: str, max_length: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > max_length or "\x00" in text:
        raise ValidationFailed(
            f"{field_name} must be 1 to {max_length} characters", field=field_name
        )
    return text


def _identifiers(pairs: Iterable[tuple[str, str]], field_name: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for kind, value in pairs:
        kind = kind.strip().lower()
        if kind not in IDENTIFIER_TYPES:
            raise ValidationFailed(
                f"{field_name}: identifier type {kind!r} is not one of"
                f" {', '.join(IDENTIFIER_TYPES)}",
                field=field_name,
            )
        text = _text(value, field_name, 80)
        assert text is not None
        if kind == "eori":
            text = text.upper()
            if not EORI.match(text):
                raise ValidationFailed(
                    f"{field_name}: {value!r} is not an EORI number (two letters of the"
                    " issuing country, then up to 15 letters or digits)",
                    field=field_name,
                )
        if (kind, text) not in found:
            found.append((kind, text))
    if len(found) > 12:
        raise ValidationFailed(f"{field_name}: at most 12 identifiers", field=field_name)
    return tuple(found)


def _operator(op: EconomicOperator, field_name: str, *, named: bool) -> EconomicOperator:
    name = _text(op.name, f"{field_name}.name", 200)
    if named and name is None:
        raise ValidationFailed(
            f"{field_name}.name is required: the represented operator is named in the statement",
            field=f"{field_name}.name",
        )
    email = _text(op.email, f"{field_name}.email", 200)
    if email is not None and not EMAIL.match(email):
        raise ValidationFailed(
            f"{field_name}.email {email!r} is not an e-mail address", field=f"{field_name}.email"
        )
    address = None
    if op.address is not None:
        a = op.address
        country = (a.country or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise ValidationFailed(
                f"{field_name}.address.country must be an ISO 3166-1 alpha-2 code",
                field=f"{field_name}.address.country",
            )
        address = Address(
            country=country,
            street=_text(a.street, f"{field_name}.address.street", 300) or "",
            postal_code=_text(a.postal_code, f"{field_name}.address.postal_code", 80) or "",
            city=_text(a.city, f"{field_name}.address.city", 200) or "",
            full_address=_text(a.full_address, f"{field_name}.address.full_address", 250),
        )
        if not (address.street and address.postal_code and address.city):
            raise ValidationFailed(
                f"{field_name}.address needs a street, a postal code and a city",
                field=f"{field_name}.address",
            )
    return EconomicOperator(
        name=name,
        identifiers=_identifiers(op.identifiers, f"{field_name}.identifiers"),
        email=email,
        phone=_text(op.phone, f"{field_name}.phone", 50),
        address=address,
    )


def checked_filing(filing: Filing, limits: Limits = Limits()) -> tuple[Filing, list[str]]:
    """The filing with its values normalised (codes upper-case, defaults filled), and the
    warnings of what the EU system will ask for that the XSD does not (RULES.md §10.3);
    ValidationFailed naming the field for a value the statement cannot hold."""
    warnings: list[str] = []
    activity = (filing.activity or "").strip().upper()
    if activity not in ACTIVITIES:
        raise ValidationFailed(
            f"activity must be one of {', '.join(ACTIVITIES)} (TRADE was dropped in V3),"
            f" not {filing.activity!r}",
            field="activity",
        )
    role = (filing.role or "").strip().upper() or (
        "REPRESENTATIVE_OPERATOR" if filing.represented is not None else "OPERATOR"
    )
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if role == "REPRESENTATIVE_OPERATOR" and filing.represented is None:
        raise ValidationFailed(
            "a REPRESENTATIVE_OPERATOR names the operator it represents (its name and identifiers)",
            field="represented",
        )
    if role == "OPERATOR" and filing.represented is not None:
        raise ValidationFailed(
            "a represented operator is given only with the role REPRESENTATIVE_OPERATOR",
            field="represented",
        )
    operator = _operator(filing.operator, "operator", named=False)
    represented = (
        _operator(filing.represented, "represented", named=True)
        if filing.represented is not None
        else None
    )
    country = _country(filing.country_of_activity, "country_of_activity")
    border = _country(filing.border_cross_country, "border_cross_country")
    if activity == "DOMESTIC" and border is not None:
        raise ValidationFailed(
            "border_cross_country is for IMPORT (country of entry) and EXPORT (of exit)",
            field="border_cross_country",
        )
    if activity != "DOMESTIC" and border is None:
        border = country
    if country is None:
        warnings.append(
            "no country of activity: the EU system asks for the member state where the"
            " coffee is placed on the market or exported (give country_of_activity)"
        )
    if activity in ("IMPORT", "EXPORT"):
        filer = represented if represented is not None else operator
        if filer.eori is None:
            warnings.append(
                f"{activity} needs the operator's EORI number (RULES.md §10.3): the EU"
                " system checks it"
                + (
                    " (the represented operator's: give its eori identifier)"
                    if represented is not None
                    else " against the account that files (give operator_eori to record it)"
                )
            )
    reference = _text(filing.internal_reference, "internal_reference", INTERNAL_REFERENCE_MAX)
    grouped: list[str] = []
    for ref in filing.grouped:
        ref = ref.strip().upper()
        if not REFERENCE_NUMBER.match(ref):
            raise ValidationFailed(
                f"grouped: {ref!r} is not a DDS reference number (at most 14 letters and digits)",
                field="grouped",
            )
        if ref not in grouped:
            grouped.append(ref)
    if len(grouped) > limits.grouped_declarations:
        raise ValidationFailed(
            f"grouped: at most {limits.grouped_declarations} declarations per statement",
            field="grouped",
        )
    return (
        Filing(
            activity=activity,
            role=role,
            operator=operator,
            represented=represented,
            country_of_activity=country,
            border_cross_country=border,
            geolocation_confidential=bool(filing.geolocation_confidential),
            internal_reference=reference,
            comment=_text(filing.comment, "comment", 2000),
            grouped=tuple(grouped),
        ),
        warnings,
    )


# --- producers and commodities -----------------------------------------------------


def producer_of(plot: Row) -> tuple[tuple[str, Any], str, bool]:
    """(key, name, named) of the producer a statement gives for a plot: its farm, by the
    owner's name, where the farm consented to give that name to the authorities (and
    withdrew no consent); else the plot's cooperative as the producer group, by its
    name (RULES.md: the producer is a natural or legal person; a group names the
    cooperative that answers for its members' plots)."""
    if plot["authority_consent"] and plot["owner_name"] and plot["consent_withdrawn_at"] is None:
        name, key, named = str(plot["owner_name"]), ("farm", plot["farm_id"]), True
    else:
        name, key, named = str(plot["cooperative_name"]), ("group", plot["cooperative_id"]), False
    return key, name.strip()[:PRODUCER_NAME_MAX], named


def apportion(total: Decimal, shares: Sequence[Decimal]) -> list[Decimal]:
    """`total` kg shared in proportion to `shares`, to the gram; the rounding remainder
    goes to the largest share, so that the parts add up to `total` exactly."""
    whole = sum(shares, Decimal(0))
    if not shares:
        return []
    if whole <= 0:
        parts = [Decimal(0)] * len(shares)
        parts[0] = total
        return parts
    parts = [(total * s / whole).quantize(KG, rounding=ROUND_HALF_EVEN) for s in shares]
    largest = max(range(len(shares)), key=lambda i: shares[i])
    parts[largest] += total - sum(parts, Decimal(0))
    return parts


def _feature_texts(plot: Row, name: str) -> str:
    """The plot's Features as compact GeoJSON text (without the enclosing collection)."""
    text = eudr.dumps(
        {"type": "FeatureCollection", "features": eudr.plot_features(plot, name)}, compact=True
    )
    return text[len(_COLLECTION_HEAD) : -len(_COLLECTION_TAIL)]


def _base64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def _encode(texts: Sequence[str]) -> str:
    collection = _COLLECTION_HEAD + ",".join(texts) + _COLLECTION_TAIL
    return base64.b64encode(collection.encode("utf-8")).decode("ascii")


def producers_of(
    plot_rows: Sequence[Row], shares: dict[UUID, Decimal], net_weight: Decimal, limits: Limits
) -> tuple[list[Producer], list[str]]:
    """The producer entries of one commodity, and notes of entries split by size: one
    per named farm and one per producer group, each holding its plots' Features (a
    producer whose geolocation alone passes the statement's limit is given as several
    entries of the same name, whole plots each)."""
    # by producer and production country: a group's plots are of its cooperative's country
    groups: dict[tuple[str, Any, str], tuple[str, bool, list[Row]]] = {}
    for plot in sorted(plot_rows, key=lambda p: (p["code"], str(p["id"]))):
        (kind, ident), name, named = producer_of(plot)
        country = str(plot["country"]).strip().upper()
        groups.setdefault((kind, ident, country), (name, named, []))[2].append(plot)
    notes: list[str] = []
    entries: list[tuple[str, str, bool, list[Row], str]] = []
    for (_, _, country), (name, named, plots) in groups.items():
        chunk: list[Row] = []
        texts: list[str] = []
        size = len(_COLLECTION_HEAD) + len(_COLLECTION_TAIL)
        pieces: list[tuple[list[Row], str]] = []
        for plot in plots:
            text = _feature_texts(plot, name)
            grown = size + len(text.encode("utf-8")) + (1 if texts else 0)
            if texts and _base64_len(grown) > limits.geolocation_bytes_per_statement:
                pieces.append((chunk, _encode(texts)))
                chunk, texts = [], []
                size = len(_COLLECTION_HEAD) + len(_COLLECTION_TAIL)
                grown = size + len(text.encode("utf-8"))
            if _base64_len(grown) > limits.geolocation_bytes_per_statement:
                raise RuleViolation(
                    "geolocation_too_large",
                    f"plot {plot['code']}: its geolocation alone is more than the"
                    f" {limits.geolocation_bytes_per_statement:,} bytes a statement may hold",
                    plot=plot["code"],
                )
            chunk.append(plot)
            texts.append(text)
            size = grown
        pieces.append((chunk, _encode(texts)))
        if len(pieces) > 1:
            notes.append(
                f"producer {name!r}: its geolocation is more than"
                f" {limits.geolocation_bytes_per_statement:,} bytes, given as"
                f" {len(pieces)} producer entries"
            )
        for chunk_plots, encoded in pieces:
            entries.append((name, country, named, chunk_plots, encoded))
    entries.sort(key=lambda e: (not e[2], e[0], e[3][0]["code"]))
    kgs = apportion(net_weight, [sum((shares[p["id"]] for p in e[3]), Decimal(0)) for e in entries])
    producers = [
        Producer(
            name=name,
            country=country,
            geojson=encoded,
            kg=kg,
            plots=tuple(p["code"] for p in plots),
            named=named,
        )
        for (name, country, named, plots, encoded), kg in zip(entries, kgs, strict=True)
    ]
    return producers, notes


def _description(kind: str, decaf: bool, species: Iterable[str], lot: Row) -> str:
    text = DESCRIPTIONS[(kind, decaf)]
    names = sorted({s for s in species if s})
    if names:
        text += f" ({', '.join(names)})"
    text += f"; lot {lot['code']}"
    if lot.get("product_name"):
        text += f", {lot['product_name']}"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def commodities_of(
    lot: Row, rows: Sequence[Row], plots: dict[UUID, Row], limits: Limits
) -> tuple[list[Commodity], list[str]]:
    """One commodity per (kind, decaffeinated) among the lot's `dds_commodity_plots` rows,
    with its share of the lot's net weight; notes of producers split by size."""
    by_kind: dict[tuple[str, bool], list[Row]] = {}
    for row in rows:
        by_kind.setdefault((row["kind"], bool(row["decaf"])), []).append(row)
    keys = sorted(by_kind, key=lambda k: (HS_HEADINGS.get(k, "999999"), k))
    for key in keys:
        if key not in HS_HEADINGS:
            raise RuleViolation(
                "hs_heading_unknown",
                f"no HS heading for {'decaffeinated ' if key[1] else ''}{key[0]} coffee",
                kind=key[0],
                decaffeinated=key[1],
            )
    weights = apportion(
        Decimal(lot["quantity_kg"]),
        [sum((Decimal(r["share"] or 0) for r in by_kind[k]), Decimal(0)) for k in keys],
    )
    commodities = []
    notes: list[str] = []
    for key, weight in zip(keys, weights, strict=True):
        group = by_kind[key]
        shares = {r["plot_id"]: Decimal(r["share"] or 0) for r in group}
        producers, split = producers_of(
            [plots[r["plot_id"]] for r in group], shares, weight, limits
        )
        notes.extend(split)
        species = [s for r in group for s in (r["species"] or [])]
        commodities.append(
            Commodity(
                kind=key[0],
                decaffeinated=key[1],
                hs_heading=HS_HEADINGS[key],
                description=_description(key[0], key[1], species, lot),
                net_weight=weight,
                producers=tuple(producers),
            )
        )
    return commodities, notes


def split_statements(commodities: Sequence[Commodity], limits: Limits) -> list[list[Part]]:
    """The commodities laid out in statements within `limits`: producers in order, a new
    commodity part when one has its most producers, a new statement when the next
    producer would pass the statement's producers or geolocation bytes, or a new part
    its commodities."""
    statements: list[list[Part]] = [[]]
    producers = 0
    size = 0
    for commodity in commodities:
        part: Part | None = None
        for producer in commodity.producers:
            grown = size + len(producer.geojson)
            if statements[-1] and (
                producers + 1 > limits.producers_per_statement
                or grown > limits.geolocation_bytes_per_statement
            ):
                statements.append([])
                producers, size, part = 0, 0, None
            if part is None or len(part.producers) >= limits.producers_per_commodity:
                if len(statements[-1]) >= limits.commodities_per_statement:
                    statements.append([])
                    producers, size = 0, 0
                part = Part(commodity)
                statements[-1].append(part)
            part.producers.append(producer)
            producers += 1
            size += len(producer.geojson)
    return statements


def _split_report(
    commodities: Sequence[Commodity],
    statements: Sequence[Sequence[Part]],
    limits: Limits,
    notes: Sequence[str],
) -> dict[str, Any]:
    reasons = list(notes)
    total_producers = sum(len(c.producers) for c in commodities)
    total_bytes = sum(len(p.geojson) for c in commodities for p in c.producers)
    summary: list[dict[str, Any]] = []
    for c in commodities:
        parts = sum(1 for s in statements for p in s if p.commodity is c)
        if len(c.producers) > limits.producers_per_commodity:
            reasons.append(
                f"commodity {c.hs_heading} ({c.description}) has {len(c.producers):,}"
                f" producers, at most {limits.producers_per_commodity:,} per commodity:"
                f" given in {parts} parts"
            )
        summary.append(
            {
                "hs_heading": c.hs_heading,
                "kind": c.kind,
                "decaffeinated": c.decaffeinated,
                "net_weight_kg": _decimal_text(c.net_weight),
                "producers": len(c.producers),
                "parts": parts,
            }
        )
    if total_producers > limits.producers_per_statement:
        reasons.append(
            f"{total_producers:,} producers, at most {limits.producers_per_statement:,} per"
            " statement"
        )
    if total_bytes > limits.geolocation_bytes_per_statement:
        reasons.append(
            f"{total_bytes:,} bytes of geolocation, at most"
            f" {limits.geolocation_bytes_per_statement:,} per statement"
        )
    if sum(len(s) for s in statements) > limits.commodities_per_statement and len(statements) > 1:
        reasons.append(f"at most {limits.commodities_per_statement} commodities per statement")
    return {
        "split": len(statements) > 1 or any(s["parts"] > 1 for s in summary) or bool(notes),
        "statements": len(statements),
        "reasons": reasons,
        "commodities": summary,
        "limits": {
            "producers_per_commodity": limits.producers_per_commodity,
            "producers_per_statement": limits.producers_per_statement,
            "commodities_per_statement": limits.commodities_per_statement,
            "geolocation_bytes_per_statement": limits.geolocation_bytes_per_statement,
        },
        "parts": [
            {
                "statement": i,
                "producers": sum(len(p.producers) for p in parts),
                "geolocation_bytes": sum(p.geolocation_bytes for p in parts),
                "commodities": [
                    {
                        "position": k,
                        "hs_heading": p.commodity.hs_heading,
                        "producers": len(p.producers),
                        "net_weight_kg": _decimal_text(_part_weight(p, parts_of(statements, p))),
                        "geolocation_bytes": p.geolocation_bytes,
                    }
                    for k, p in enumerate(parts, start=1)
                ],
            }
            for i, parts in enumerate(statements, start=1)
        ],
    }


def parts_of(statements: Sequence[Sequence[Part]], part: Part) -> int:
    """How many parts the commodity of `part` is given in."""
    return sum(1 for s in statements for p in s if p.commodity is part.commodity)


def _part_weight(part: Part, parts: int) -> Decimal:
    if parts == 1:
        return part.commodity.net_weight
    weight = sum((p.kg for p in part.producers), Decimal(0))
    return weight if weight > 0 else KG  # a positive quantity (§10.3), a gram at least


# --- the request ----------------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    """A decimal as xs:decimal text: no exponent, no trailing zeros, at most 6 decimals."""
    return format(value.quantize(Decimal("0.000001")).normalize(), "f")


def _operator_json(op: EconomicOperator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if op.identifiers:
        out["operatorReferenceNumber"] = [
            {"identifierType": t, "identifierValue": v} for t, v in op.identifiers
        ]
    if op.address is not None:
        a = op.address
        address = {
            "country": a.country,
            "street": a.street,
            "postalCode": a.postal_code,
            "city": a.city,
        }
        if a.full_address:
            address["fullAddress"] = a.full_address
        out["operatorAddress"] = address
    if op.email:
        out["operatorEmail"] = op.email
    if op.phone:
        out["operatorPhone"] = op.phone
    if op.name:
        out["operatorName"] = op.name
    return out


def _request(
    filing: Filing,
    parts: Sequence[Part],
    reference: str,
    grouped: Sequence[str],
    all_statements: Sequence[Sequence[Part]],
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "internalReferenceNumber": reference,
        "activityType": filing.activity,
    }
    if filing.represented is not None:
        statement["representedOperator"] = _operator_json(filing.represented)
    if filing.country_of_activity:
        statement["countryOfActivity"] = filing.country_of_activity
    if filing.border_cross_country:
        statement["borderCrossCountry"] = filing.border_cross_country
    if filing.comment:
        statement["comment"] = filing.comment
    statement["commodities"] = [
        {
            "position": k,
            "descriptors": {
                "descriptionOfGoods": part.commodity.description,
                "goodsMeasure": {
                    "netWeight": _decimal_text(_part_weight(part, parts_of(all_statements, part)))
                },
            },
            "hsHeading": part.commodity.hs_heading,
            "producers": [
                {
                    "position": j,
                    "country": p.country,
                    "name": p.name,
                    "geometryGeojson": p.geojson,
                }
                for j, p in enumerate(part.producers, start=1)
            ],
        }
        for k, part in enumerate(parts, start=1)
    ]
    statement["geoLocationConfidential"] = filing.geolocation_confidential
    if grouped:
        statement["groupedDeclarations"] = list(grouped)
    return {"operatorRole": filing.role, "statement": statement}


def upstream_references(conn: DbConn, lot_id: UUID, environment: str | None) -> list[str]:
    """Reference numbers of statements in force for lots this lot derives from (recorded
    with POST /v1/lots/{id}/dds, or filed through coffeetrace and AVAILABLE in
    `environment`), and those the lot received: its groupedDeclarations
    (dds_references.to_group)."""
    return dds_references.to_group(dds_references.in_force(conn, lot_id, environment=environment))


def build_dds(
    conn: DbConn,
    lot_id: UUID,
    filing: Filing,
    *,
    limits: Limits = Limits(),
    environment: str | None = None,
) -> dict[str, Any]:
    """The lot's due diligence statement(s), JSON-native:
    {"lot": {"id", "public_id", "code", "kind", "quantity_kg", "cooperative"},
     "filing": {"operatorRole", "activityType", "operator": {...}},
     "statements": [{"operatorRole", "statement": {...}}]  (SubmitDdsRequest content, the
                   element names of the schema; netWeight as decimal text, the GeoJSON
                   base64 as in the XML),
     "producers": {"entries", "named", "groups", "plots"},
     "split": {"split", "statements", "reasons", "commodities", "limits", "parts"},
     "warnings": [...]}
    `environment`: the EU system whose AVAILABLE statements of upstream lots are grouped
    (besides the references recorded on them); None: the recorded ones only.
    NotFound for an unknown lot (the caller checks tenancy first); ValidationFailed for a
    filing the statement cannot hold; RuleViolation `no_producers` for a lot that comes
    from no plot, or naming a plot whose geometry breaks the EU rules."""
    filing, warnings = checked_filing(filing, limits)
    lot = lot_by_id(conn, lot_id)
    # the upstream statements first: each a reference, checked when it was recorded
    grouped = list(
        dict.fromkeys([*upstream_references(conn, lot_id, environment), *filing.grouped])
    )
    if len(grouped) > limits.grouped_declarations:
        raise RuleViolation(
            "too_many_grouped",
            f"lot {lot['code']}: {len(grouped)} statements to group (upstream and given), at"
            f" most {limits.grouped_declarations} per statement",
            lot=lot["code"],
            grouped=len(grouped),
        )
    if Decimal(lot["quantity_kg"]) > NET_WEIGHT_MAX:
        raise ValidationFailed(
            f"lot {lot['code']}: {lot['quantity_kg']} kg is more than a statement's net"
            f" weight can say ({NET_WEIGHT_MAX} kg)",
            lot=lot["code"],
        )
    rows = q.rows(
        conn, SQL["dds_commodity_plots"], {"lot_id": lot_id, "decaf_steps": list(DECAF_STEPS)}
    )
    if not rows:
        raise RuleViolation(
            "no_producers",
            f"lot {lot['code']} comes from no plot (no harvests behind it): a statement"
            " needs the geolocation of the plots its coffee was grown on",
            lot=lot["code"],
        )
    plot_rows = q.rows(conn, SQL["dds_plots"], {"ids": list({r["plot_id"] for r in rows})})
    plots = {p["id"]: p for p in plot_rows}
    commodities, notes = commodities_of(lot, rows, plots, limits)
    statements = split_statements(commodities, limits)
    base = filing.internal_reference or str(lot["code"])
    n = len(statements)
    requests = []
    for i, parts in enumerate(statements, start=1):
        reference = base if n == 1 else f"{base}-{i}/{n}"
        if len(reference) > INTERNAL_REFERENCE_MAX:
            raise ValidationFailed(
                f"internal reference {reference!r} is longer than {INTERNAL_REFERENCE_MAX}"
                " characters; give a shorter one",
                field="internal_reference",
            )
        # a declaration grouped once turns GROUPED, and one already GROUPED blocks the
        # next submission (§4.1.3): the first statement groups them
        requests.append(_request(filing, parts, reference, grouped if i == 1 else (), statements))
    if grouped and n > 1:
        warnings.append(
            f"the grouped declarations are in statement 1 of {n} only: a declaration can be"
            " grouped once"
        )
    entries = [p for c in commodities for p in c.producers]
    return {
        "lot": {
            "id": str(lot["id"]),
            "public_id": lot["public_id"],
            "code": lot["code"],
            "kind": lot["kind"],
            "quantity_kg": _decimal_text(Decimal(lot["quantity_kg"])),
            "cooperative": lot["cooperative_code"],
        },
        "filing": {
            "operatorRole": filing.role,
            "activityType": filing.activity,
            # SubmitDdsRequest has no element for the filing operator: the EU system knows
            # it from the account that submits; kept here for the record
            "operator": _operator_json(filing.operator) if _has_identity(filing.operator) else {},
        },
        "statements": requests,
        "producers": {
            "entries": len(entries),
            "named": len({p.name for p in entries if p.named}),
            "groups": len({p.name for p in entries if not p.named}),
            "plots": len(plots),
        },
        "split": _split_report(commodities, statements, limits, notes),
        "warnings": warnings,
    }


def _has_identity(op: EconomicOperator) -> bool:
    return bool(op.name or op.identifiers or op.email or op.phone or op.address)


# --- XML --------------------------------------------------------------------------------


def _add(parent: ET.Element, ns: str, tag: str, text: Any = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        element.text = str(text).lower() if isinstance(text, bool) else str(text)
    return element


def _operator_xml(parent: ET.Element, op: dict[str, Any]) -> None:
    for ref in op.get("operatorReferenceNumber", []):
        number = _add(parent, COMMON_NS, "operatorReferenceNumber")
        _add(number, COMMON_NS, "identifierType", ref["identifierType"])
        _add(number, COMMON_NS, "identifierValue", ref["identifierValue"])
    address = op.get("operatorAddress")
    if address:
        a = _add(parent, COMMON_NS, "operatorAddress")
        for tag in ("country", "street", "postalCode", "city", "fullAddress"):
            if address.get(tag):
                _add(a, COMMON_NS, tag, address[tag])
    for tag in ("operatorEmail", "operatorPhone", "operatorName"):
        if op.get(tag):
            _add(parent, COMMON_NS, tag, op[tag])


def to_xml(request: dict[str, Any]) -> bytes:
    """One statement of `build_dds` ({"operatorRole", "statement"}) as a SubmitDdsRequest
    XML document, in the schema's element order (UTF-8, with its declaration)."""
    root = ET.Element(f"{{{DDS_NS}}}SubmitDdsRequest")
    _add(root, DDS_NS, "operatorRole", request["operatorRole"])
    s = request["statement"]
    st = _add(root, DDS_NS, "statement")
    if s.get("internalReferenceNumber"):
        _add(st, DDS_NS, "internalReferenceNumber", s["internalReferenceNumber"])
    _add(st, DDS_NS, "activityType", s["activityType"])
    if s.get("representedOperator"):
        _operator_xml(_add(st, DDS_NS, "representedOperator"), s["representedOperator"])
    for tag in ("countryOfActivity", "borderCrossCountry", "comment"):
        if s.get(tag):
            _add(st, DDS_NS, tag, s[tag])
    for c in s["commodities"]:
        ce = _add(st, DDS_NS, "commodities")
        _add(ce, DDS_NS, "position", c["position"])
        d = _add(ce, DDS_NS, "descriptors")
        _add(d, COMMON_NS, "descriptionOfGoods", c["descriptors"]["descriptionOfGoods"])
        measure = _add(d, COMMON_NS, "goodsMeasure")
        _add(measure, COMMON_NS, "netWeight", c["descriptors"]["goodsMeasure"]["netWeight"])
        _add(ce, DDS_NS, "hsHeading", c["hsHeading"])
        for p in c["producers"]:
            pe = _add(ce, DDS_NS, "producers")
            _add(pe, DDS_NS, "position", p["position"])
            _add(pe, DDS_NS, "country", p["country"])
            if p.get("name"):
                _add(pe, DDS_NS, "name", p["name"])
            _add(pe, DDS_NS, "geometryGeojson", p["geometryGeojson"])
    _add(st, DDS_NS, "geoLocationConfidential", bool(s["geoLocationConfidential"]))
    for ref in s.get("groupedDeclarations", []):
        _add(_add(st, DDS_NS, "groupedDeclarations"), COMMON_NS, "groupedDeclaration", ref)
    ET.indent(root, space="  ")
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


ET.register_namespace("dds", DDS_NS)
ET.register_namespace("eudrCommon", COMMON_NS)


@lru_cache(maxsize=4)
def _schema(schema_dir: str) -> Any:
    path = Path(schema_dir) / SCHEMA_FILE
    if not path.is_file():
        raise ValidationFailed(
            f"no EU DDS schema at {path}: point at the folder with {SCHEMA_FILE} and the"
            " schemas it imports",
            field="schemas",
        )
    # imports are read from the folder; nothing is fetched from the network
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def validate_xml(xml: bytes, schema_dir: Path | str) -> None:
    """Check a SubmitDdsRequest against the EU's XSDs in `schema_dir` (an offline copy
    whose imports are local files, as in ../shared/reference/eudr/); ValidationFailed
    with the schema's first complaint otherwise."""
    schema = _schema(str(Path(schema_dir).resolve()))
    document = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))
    if not schema.validate(document):
        errors = list(schema.error_log)
        first = errors[0]
        raise ValidationFailed(
            f"the statement is not valid against the EU schemas: {first.message}"
            f" (line {first.line})",
            errors=len(errors),
        )


def decoded_geojson(producer: dict[str, Any]) -> dict[str, Any]:
    """The GeoJSON FeatureCollection a statement's producer carries (base64 decoded)."""
    value: dict[str, Any] = json.loads(base64.b64decode(producer["geometryGeojson"]))
    return value
