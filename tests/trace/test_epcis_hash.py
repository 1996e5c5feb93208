"""The CBV 2.0 EPCIS event hash: against GS1's reference implementation of the
algorithm (the `epcis-event-hash-generator` package, a test dependency) on GS1's
official examples and on a corpus of events written here to hold every kind of event and
field, and the canonicalisation rules one by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from epcis_event_hash_generator.__main__ import epcis_hash_from_file

from coffeetrace.trace import epcis_hash as h
from tests.conftest import SHARED

# the reference implementation reads its bundled JSON-LD contexts with a deprecated call
pytestmark = pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning")
EXAMPLES = SHARED / "reference" / "epcis" / "examples"
# cbvmda is declared by the EPCIS context itself too; the reference implementation
# expands only prefixes the document declares, so the corpus declares the one it uses
# (docs/epcis.md: with it undeclared, coffeetrace still expands it, the reference not)
CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cbvmda": "urn:epcglobal:cbv:mda:"},
]
T = "2025-11-20T09:30:00.000+07:00"
SGTIN = "https://id.gs1.org/01/08930000000019/21/1001"
LGTIN_CLASS = "https://id.gs1.org/01/08930000000026/10/EATU25-G01"
LOCATION = "https://id.gs1.org/414/8930000000014"
QTY = {"epcClass": LGTIN_CLASS, "quantity": 480.5, "uom": "KGM"}
CORPUS: list[dict[str, Any]] = [
    {
        "type": "ObjectEvent",
        "eventTime": T,
        "eventTimeZoneOffset": "+07:00",
        "epcList": [SGTIN, "urn:epc:id:sgtin:8930000.000001.1002"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": LOCATION},
        "bizLocation": {"id": "urn:epc:id:sgln:8930000.00001.0"},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:8930000000014:PO-1"}
        ],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:8930000.00001"}],
        "destinationList": [
            {"type": "owning_party", "destination": "urn:epc:id:pgln:4012345.00001"}
        ],
        "persistentDisposition": {"set": ["completeness_verified"], "unset": ["needs_replacement"]},
    },
    {
        "type": "ObjectEvent",
        "eventTime": "2025-11-20T02:30:00Z",
        "eventTimeZoneOffset": "+00:00",
        "quantityList": [QTY],
        "action": "ADD",
        "bizStep": "commissioning",
        "ilmd": {"cbvmda:countryOfOrigin": "VN", "cbvmda:harvestStartDate": "2025-11-01"},
        "certificationInfo": "https://example.org/cert/4C-123",
        "sensorElementList": [
            {
                "sensorMetadata": {"time": T, "deviceID": "urn:epc:id:giai:8930000.1"},
                "sensorReport": [
                    {"type": "Temperature", "value": 26.50, "uom": "CEL"},
                    {"type": "RelativeHumidity", "value": 71, "uom": "A93"},
                ],
            }
        ],
    },
    {
        "type": "ObjectEvent",
        "eventTime": T,
        "eventTimeZoneOffset": "+07:00",
        "epcList": [SGTIN],
        "action": "DELETE",
        "errorDeclaration": {
            "declarationTime": "2025-11-21T08:00:00.000+07:00",
            "reason": "incorrect_data",
            "correctiveEventIDs": ["urn:uuid:8d6c6b4e-4b1b-4c5a-9b7b-0f0a7f2f3a11"],
        },
    },
    {
        "type": "AggregationEvent",
        "eventTime": T,
        "eventTimeZoneOffset": "+07:00",
        "parentID": "urn:epc:id:sscc:8930000.0000000001",
        "childEPCs": [SGTIN],
        "childQuantityList": [QTY],
        "action": "ADD",
        "bizStep": "packing",
    },
    {
        "type": "TransactionEvent",
        "eventTime": T,
        "eventTimeZoneOffset": "+07:00",
        "bizTransactionList": [
            {"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:8930000000014:INV-9"}
        ],
        "epcList": [SGTIN],
        "quantityList": [QTY],
        "action": "ADD",
        "bizStep": "accepting",
    },
    {
        "type": "TransformationEvent",
        "eventTime": T,
        "eventTimeZoneOffset": "+07:00",
        "inputQuantityList": [QTY],
        "outputQuantityList": [
            {
                "epcClass": "https://id.gs1.org/01/08930000000033/10/R-1",
                "quantity": 400,
                "uom": "KGM",
            }
        ],
        "transformationID": "urn:uuid:6c0d4e6a-4a0e-4f53-8d5e-1f0c1d9a2b77",
        "bizStep": "commissioning",
    },
]


def _document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": T,
        "epcisBody": {"eventList": events},
    }


def _reference_hashes(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    path = tmp_path / "document.jsonld"
    path.write_text(json.dumps(document))
    hashes, _ = epcis_hash_from_file(str(path))
    return list(hashes)


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.jsonld")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not _examples(), reason=f"GS1's EPCIS examples are not at {EXAMPLES}")
@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_gs1_examples_hash_as_the_reference_implementation_does(tmp_path: Path, path: Path) -> None:
    document = json.loads(path.read_text())
    assert h.event_hashes(document) == _reference_hashes(tmp_path, document)


@pytest.mark.parametrize("event", CORPUS, ids=lambda e: e["type"] + "-" + e.get("action", ""))
def test_each_kind_of_event_hashes_as_the_reference_implementation_does(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    document = _document([event])
    assert h.event_hashes(document) == _reference_hashes(tmp_path, document)


def test_the_corpus_covers_every_kind_of_event_and_field() -> None:
    # (no AssociationEvent: it has the fields of an AggregationEvent)
    assert {e["type"] for e in CORPUS} >= {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
    }
    fields = {k for e in CORPUS for k in e}
    assert fields >= {
        "sensorElementList",
        "ilmd",
        "bizTransactionList",
        "sourceList",
        "destinationList",
        "persistentDisposition",
        "certificationInfo",
        "errorDeclaration",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
    }


BASE = {
    "type": "ObjectEvent",
    "eventTime": "2020-03-04T11:00:30.000+01:00",
    "eventTimeZoneOffset": "+01:00",
    "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"],
    "action": "OBSERVE",
}


def test_the_same_event_written_differently_hashes_the_same() -> None:
    other = {
        "action": "OBSERVE",
        "eventTimeZoneOffset": "+01:00",
        # the same instant in UTC, without milliseconds; the Digital Link of the SGTIN
        "eventTime": "2020-03-04T10:00:30Z",
        "epcList": ["https://example.com/01/04012345111118/21/9876?linkType=all"],
        "type": "ObjectEvent",
        "recordTime": "2024-01-01T00:00:00Z",  # the server's, not the event's
        "eventID": "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
    }
    assert h.event_hash(BASE) == h.event_hash(other)
    assert h.event_hash({**BASE, "bizStep": "shipping"}) == h.event_hash(
        {**BASE, "bizStep": "urn:epcglobal:cbv:bizstep:shipping"}
    )
    assert h.event_hash({**BASE, "bizStep": "shipping"}) != h.event_hash(BASE)


def test_the_pre_hash_string_of_a_quantity_event() -> None:
    event = {
        **BASE,
        "epcList": [],
        "quantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200.0},
            {"epcClass": "https://id.gs1.org/01/04012345123456/10/ABC", "quantity": 10.50,
             "uom": "KGM"},
        ],
        "bizStep": "receiving",
        "disposition": "in_progress",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        "ct:step": "roasting",
    }  # fmt: skip
    prefixes = h.context_prefixes([{"ct": "https://trace.example.vn/voc/"}])
    assert h.prehash(event, prefixes) == (
        "eventType=ObjectEventeventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00"
        "quantityList"
        "quantityElementepcClass=https://id.gs1.org/01/04012345123456/10/998877quantity=200"
        "quantityElementepcClass=https://id.gs1.org/01/04012345123456/10/ABCquantity=10.5uom=KGM"
        "action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-receiving"
        "disposition=https://ref.gs1.org/cbv/Disp-in_progress"
        "readPointid=https://id.gs1.org/414/4012345000016"
        "{https://trace.example.vn/voc/}step=roasting"
    )


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("2023-01-18T11:04:03.1415Z", "2023-01-18T11:04:03.142Z"),
        ("2023-01-18T11:04:03.1414Z", "2023-01-18T11:04:03.141Z"),
        ("2023-01-18T11:04:03.9995Z", "2023-01-18T11:04:04.000Z"),
        ("2023-12-31T23:59:59.9999-01:00", "2024-01-01T01:00:00.000Z"),
        ("2022-02-16T20:33:31.116000-06:00", "2022-02-17T02:33:31.116Z"),
        ("2019-10-21T00:05:00-06:00", "2019-10-21T06:05:00.000Z"),
    ],
)
def test_times_in_utc_with_milliseconds_rounded_half_up(given: str, canonical: str) -> None:
    assert h.canonical_time(given) == canonical


@pytest.mark.parametrize(
    ("given", "canonical"),
    [(1, "1"), (1.0, "1"), ("0.3430", "0.343"), (12.1, "12.1"), (1e-7, "0.0000001"),
     ("2030", "2030"), (True, "true")],
)  # fmt: skip
def test_numbers_without_trailing_zeros(given: Any, canonical: str) -> None:
    assert h.canonical_value(given, h.STANDARD_PREFIXES) == canonical


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:id:sscc:4012345.0000000333", "https://id.gs1.org/00/040123450000003338"),
        ("urn:epc:id:sgln:4012345.00011.987", "https://id.gs1.org/414/4012345000115/254/987"),
        ("urn:epc:id:sgln:4012345.00011.0", "https://id.gs1.org/414/4012345000115"),
        ("urn:epc:class:lgtin:4054739.099914.20160711",
         "https://id.gs1.org/01/04054739999148/10/20160711"),
        ("urn:epc:idpat:sgtin:4012345.066666.*", "https://id.gs1.org/01/04012345666663"),
        ("urn:epc:id:pgln:4000001.98765", "https://id.gs1.org/417/4000001987658"),
        ("urn:epc:id:gdti:4012345.55555.1234", "https://id.gs1.org/253/40123455555541234"),
        # a cooperative's own domain, a GTIN-13, a CPV and a lot beside a serial
        ("https://trace.example.vn/01/8930000000019/10/G-1",
         "https://id.gs1.org/01/08930000000019/10/G-1"),
        ("https://id.gs1.org/01/04012345123456/22/A1/10/L1/21/S1",
         "https://id.gs1.org/01/04012345123456/21/S1"),
        ("https://trace.example.vn/l/abc", "https://trace.example.vn/l/abc"),
        ("geo:50.94,6.92", "geo:50.94,6.92"),
    ],
)  # fmt: skip
def test_identifiers_as_constrained_canonical_digital_links(given: str, canonical: str) -> None:
    assert h.canonical_id(given) == canonical


def test_check_digits() -> None:
    assert h.check_digit("893000000001") == "9"  # GTIN-13 8930000000019
    assert h.check_digit("1061414107346") == "4"  # GTIN-14 10614141073464
    assert h.check_digit("401234500011") == "5"


def test_the_hash_id_is_an_ni_uri() -> None:
    digest = h.event_hash(BASE)
    assert digest.startswith("ni:///sha-256;") and digest.endswith("?ver=CBV2.0")
    assert len(digest.split(";")[1].split("?")[0]) == 64
