"""The `ct:` vocabulary: every extension term the EPCIS export uses, and its type.

The export binds the prefix "ct" to {base_url}/voc/ in its JSON-LD @context; the API
serves `vocabulary_document` at that namespace (api/vocabulary.py), so each term's IRI
answers with its definition. Measurements of a processing step are free JSON when they
are recorded; the ones named here are exported as their own typed terms
(`typed_measurements`): numbers as JSON numbers whatever form they were recorded in
(kilograms recorded as Decimals come back from jsonb as strings), text as strings. A
measurement the vocabulary does not define, or whose value does not fit its type, is
exported as a name/value pair under ct:otherMeasurement rather than as an undefined term.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from coffeetrace.trace.processing import STEPS
from coffeetrace.trace.rules import DEFAULT_RULES

PATH = "/voc/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
SCHEMA = "https://schema.org/"
# steps CBV names itself (https://ref.gs1.org/cbv/BizStep-...): not ours to define
CBV_STEPS = {"packing": "packing", "shipping": "shipping", "receiving": "receiving"}
DAILY_SUMMARY = "daily-summary"
NUMERIC_TEXT = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")  # "0.46" yes; "007", "1e3" no


@dataclass(frozen=True)
class Term:
    name: str  # local name: the term is ct:{name}, its IRI {base_url}/voc/{name}
    label: str
    comment: str
    range: str = "xsd:string"  # xsd:string | xsd:decimal | xsd:integer | rdf:JSON
    unit: str | None = None  # UN/CEFACT Rec 20 code of a measurement's unit
    kind: str = "rdf:Property"  # or skos:Concept for a value (a business step, a method)


PROPERTIES: tuple[Term, ...] = (
    Term(
        "treePublicId",
        "Tree public id",
        "Random public id of the harvested tree: its page is {base_url}/t/{id}.",
    ),
    Term("treeTag", "Tree tag", "Code on the tree's physical tag."),
    Term("species", "Species", "Coffee species of the tree (robusta, arabica...)."),
    Term("cultivar", "Cultivar", "Cultivar (clone) of the tree, e.g. TR4."),
    Term("farmCode", "Farm code", "The cooperative's pseudonymous code of the farm."),
    Term("plotCode", "Plot code", "The farm's code of the plot the tree stands on."),
    Term("growingAreaCode", "Growing area code", "Official growing-area code of the plot."),
    Term(
        "harvestCherryKg",
        "Harvest cherry weight",
        "Fresh cherry weighed at this harvest,"
        " all of it (the event's quantity is the part in this lot).",
        "xsd:decimal",
        "KGM",
    ),
    Term(
        "ripenessPct",
        "Ripeness",
        "Share of ripe cherries in the harvest, percent.",
        "xsd:decimal",
        "P1",
    ),
    Term("harvestId", "Harvest id", "Identifier (UUID) of the harvest record."),
    Term(
        "ddsReferenceNumber",
        "DDS reference number",
        "Reference number the EU Information System gave a due diligence statement"
        " (Regulation (EU) 2023/1115), inside gs1:regulatoryIdentifier.",
    ),
    Term(
        "ddsVerificationNumber",
        "DDS verification number",
        "Verification number of that statement, which with the reference number retrieves"
        " it from the EU Information System.",
    ),
    Term(
        "step",
        "Processing step",
        "The step as the cooperative recorded it (drying, hulling, grading...).",
    ),
    Term("place", "Place", "Where the step happened, as recorded (free text)."),
    Term(
        "evidence",
        "Evidence",
        "Documents backing the step: a JSON list of objects with"
        " type, name, issuer, url and sha256.",
        "rdf:JSON",
    ),
    Term(
        "measurements",
        "Measurements",
        "The packing step's measurements: an object of"
        " ct: measurement terms (and ct:otherMeasurement).",
        "rdf:JSON",
    ),
    Term(
        "otherMeasurement",
        "Other measurement",
        "A recorded measurement this vocabulary"
        " does not define, or whose value does not fit its type: a JSON list of"
        " {ct:name, ct:value}.",
        "rdf:JSON",
    ),
    Term("name", "Name", "Name of a measurement as recorded."),
    Term(
        "value",
        "Value",
        "Value of a measurement as recorded (numbers as JSON numbers).",
        "rdf:JSON",
    ),
    Term(
        "packedKg",
        "Packed weight",
        "Kilograms of the packed lot (the AggregationEvent's parent).",
        "xsd:decimal",
        "KGM",
    ),
    Term(
        "metric",
        "Sensor metric",
        "The FIWARE-style name of the measured quantity"
        " (temperature, soilMoistureVwc, precipitation...).",
    ),
    Term(
        "readings", "Readings", "Number of sensor readings the summary is made of.", "xsd:integer"
    ),
    Term(
        "statementSignature",
        "Statement signature",
        "Signature over the lot's signed"
        " statement (Ed25519; key at /.well-known/coffeetrace-keys).",
        "rdf:JSON",
    ),
    Term(
        "checkpoint",
        "Checkpoint",
        "The newest signed checkpoint of the cooperative's hash chain.",
        "rdf:JSON",
    ),
    Term(
        "inclusion",
        "Inclusion proofs",
        "Merkle inclusion proofs of the lot's events in the checkpoint.",
        "rdf:JSON",
    ),
)

MEASUREMENTS: tuple[Term, ...] = (
    Term(
        "moisture_pct",
        "Moisture",
        "Moisture content of the coffee, percent of its mass.",
        "xsd:decimal",
        "P1",
    ),
    Term("husk_kg", "Husk", "Husk removed at hulling, kilograms.", "xsd:decimal", "KGM"),
    Term("screen_size", "Screen size", "Bean screen size, 1/64 inch.", "xsd:decimal"),
    Term(
        "defect_count",
        "Defects",
        "Defects counted in the graded sample (SCA method).",
        "xsd:integer",
        "C62",
    ),
    Term(
        "black_broken_pct",
        "Black and broken beans",
        "Black and broken beans, percent of mass.",
        "xsd:decimal",
        "P1",
    ),
    Term("cupping_score", "Cupping score", "Cupping score, points out of 100.", "xsd:decimal"),
    Term(
        "roast_level",
        "Roast level",
        "Roast level as named by the roaster (light, medium, dark...).",
    ),
    Term(
        "temperature_c",
        "Temperature",
        "Process temperature, degrees Celsius.",
        "xsd:decimal",
        "CEL",
    ),
    Term("days", "Duration", "Duration of the step, days.", "xsd:decimal", "DAY"),
    Term("method", "Method", "How the step was done (e.g. natural, sun-dried on patio)."),
    Term("bags", "Bags", "Number of bags packed.", "xsd:integer", "C62"),
    Term("bag_kg", "Bag weight", "Weight of one bag, kilograms.", "xsd:decimal", "KGM"),
    Term("packaging", "Packaging", "Packaging material (jute bag, GrainPro...)."),
)

MEASUREMENT_TERMS: dict[str, Term] = {t.name: t for t in MEASUREMENTS}


def namespace(base_url: str) -> str:
    """The IRI the prefix "ct" stands for."""
    return base_url.rstrip("/") + PATH


def biz_step(step: str) -> str | None:
    """The local name of a step's bizStep in this vocabulary; None for a CBV step."""
    return None if step in CBV_STEPS else f"bizstep/{quote(step, safe='')}"


def _value_terms(steps: Iterable[str]) -> list[Term]:
    terms = [
        Term(
            DAILY_SUMMARY,
            "Daily summary",
            "Sensor readings bucketed by UTC day (count, mean, min, max, total per day),"
            " recombined over the reported period.",
            kind="skos:Concept",
        )
    ]
    for step in sorted(set(steps)):
        name = biz_step(step)
        if name is not None:
            label = step.replace("_", " ")
            terms.append(
                Term(
                    name,
                    label.capitalize(),
                    f"Business step: {label} (a coffee processing step CBV does not name).",
                    kind="skos:Concept",
                )
            )
    return terms


def terms(extra_steps: Iterable[str] = ()) -> list[Term]:
    """Every term: the properties, the measurements, the daily-summary method and a
    business step for each known step and each of `extra_steps` (configured ones)."""
    steps = set(STEPS) | set(DEFAULT_RULES.step_max_yield) | set(extra_steps)
    return [*PROPERTIES, *MEASUREMENTS, *_value_terms(steps)]


CONTEXT: dict[str, Any] = {
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "owl": OWL,
    "skos": SKOS,
    "schema": SCHEMA,
    "rdfs:range": {"@type": "@id"},
    "rdfs:isDefinedBy": {"@type": "@id"},
}


def term_node(term: Term) -> dict[str, Any]:
    """One term as a JSON-LD node (compact IRIs under the document's @context)."""
    node: dict[str, Any] = {
        "@id": f"ct:{term.name}",
        "@type": term.kind,
        "rdfs:label": term.label,
        "rdfs:comment": term.comment,
    }
    if term.kind == "rdf:Property":
        node["rdfs:range"] = term.range
    if term.unit:
        node["schema:unitCode"] = term.unit
    node["rdfs:isDefinedBy"] = "ct:"
    return node


def context(base_url: str) -> dict[str, Any]:
    return {**CONTEXT, "ct": namespace(base_url)}


def vocabulary_document(base_url: str, extra_steps: Iterable[str] = ()) -> dict[str, Any]:
    """The vocabulary as one JSON-LD document: the ontology node, then every term."""
    return {
        "@context": context(base_url),
        "@graph": [
            {
                "@id": "ct:",
                "@type": "owl:Ontology",
                "rdfs:label": "coffeetrace EPCIS extension vocabulary",
                "rdfs:comment": "Terms of coffeetrace's EPCIS 2.0 exports beyond EPCIS and"
                " CBV: tree-level harvest master data, processing steps and their"
                " measurements, sensor summaries and the evidence of the signed records.",
            },
            *(term_node(t) for t in terms(extra_steps)),
        ],
    }


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
    elif isinstance(value, str) and NUMERIC_TEXT.match(value.strip()):
        number = Decimal(value.strip())
    else:
        return None
    return number if number.is_finite() else None


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def typed_value(term: Term, value: Any) -> Any:
    """The value as its term's type, or None when it does not fit it."""
    number = _number(value)
    if term.range == "xsd:string":
        if isinstance(value, str):
            return value
        return None if number is None else str(value)
    if number is None:
        return None
    if term.range == "xsd:integer":
        return int(number) if number == number.to_integral_value() else None
    return _json_number(number)


def typed_measurements(recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """A step's measurements as ct: terms, each of its vocabulary type; the rest as
    ct:otherMeasurement pairs (numeric text there becomes a number too)."""
    typed: dict[str, Any] = {}
    other: list[dict[str, Any]] = []
    for name, value in sorted((recorded or {}).items()):
        term = MEASUREMENT_TERMS.get(name)
        converted = None if term is None else typed_value(term, value)
        if converted is not None:
            typed[f"ct:{name}"] = converted
            continue
        number = _number(value)
        other.append(
            {"ct:name": name, "ct:value": value if number is None else _json_number(number)}
        )
    if other:
        typed["ct:otherMeasurement"] = other
    return typed
