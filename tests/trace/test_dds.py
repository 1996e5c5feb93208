"""EUDR due diligence statements of lots of every kind (cherry, green, roasted, blended,
decaffeinated), built with the domain's own functions and checked against the EU's XSDs
(../shared/reference/eudr/); the filing's rules, consent on producer names, and the
split at the EU system's limits."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import shapely.geometry

from coffeetrace.errors import RuleViolation, ValidationFailed
from coffeetrace.trace import dds, lots, processing, registry, registry_versions
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.rules import TraceRules
from tests.conftest import SHARED
from tests.trace.builders import T0, insert_harvest
from tests.trace.chain import build_chain

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
EUDR = SHARED / "reference" / "eudr"
NS = {"dds": dds.DDS_NS, "c": dds.COMMON_NS}
IMPORT_DE = dds.Filing(
    activity="IMPORT",
    operator=dds.EconomicOperator(identifiers=(("eori", "DE123456789012345"),)),
    country_of_activity="DE",
)


@pytest.fixture
def xsd() -> Path:
    if not (EUDR / dds.SCHEMA_FILE).exists():
        pytest.skip(f"the EU's DDS schemas are not at {EUDR} (shared/ is not beside the checkout)")
    return EUDR


def statements_valid(doc: dict[str, Any], xsd: Path) -> list[ET.Element]:
    """Every statement of the document as XML, each valid against the EU schemas."""
    roots = []
    for request in doc["statements"]:
        xml = dds.to_xml(request)
        dds.validate_xml(xml, xsd)
        roots.append(ET.fromstring(xml))
    return roots


def check_geojson_rules(collection: dict[str, Any]) -> None:
    """RULES.md's GeoJSON rules on a producer's decoded GeoJSON."""
    assert collection["type"] == "FeatureCollection" and collection["features"]
    for f in collection["features"]:
        props, geom = f["properties"], f["geometry"]
        assert set(props) <= set(dds.eudr.EU_PROPERTIES), props
        assert props["ProducerCountry"] == "VN" and props["ProducerName"]
        assert props["ProductionPlace"]
        if geom["type"] == "Point":
            lon, lat = geom["coordinates"]  # flat, [longitude, latitude]
            assert 108 < lon < 109 and 12 < lat < 13
            assert isinstance(props["Area"], float) and 0.0001 <= props["Area"] <= 4
        else:
            assert geom["type"] == "Polygon" and "Area" not in props
            assert len(geom["coordinates"]) == 1  # no holes
            ring = geom["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 4
            assert len(set(map(tuple, ring[:-1]))) == len(ring) - 1  # no duplicate vertex
            assert shapely.geometry.shape(geom).is_valid


def test_green_lot_statement_is_valid_and_names_the_group(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    built = build_chain(conn, keys=keys)
    doc = dds.build_dds(conn, built["grade_b"]["id"], IMPORT_DE)
    (root,) = statements_valid(doc, xsd)
    (request,) = doc["statements"]
    statement = request["statement"]
    assert request["operatorRole"] == "OPERATOR"
    assert statement["activityType"] == "IMPORT"
    assert (statement["countryOfActivity"], statement["borderCrossCountry"]) == ("DE", "DE")
    assert statement["geoLocationConfidential"] is False
    assert statement["internalReferenceNumber"] == "GR-1-S16"
    (commodity,) = statement["commodities"]
    assert commodity["hsHeading"] == "090111"
    assert commodity["descriptors"]["goodsMeasure"]["netWeight"] == "2"
    assert commodity["descriptors"]["descriptionOfGoods"].startswith(
        "Green coffee, not roasted, not decaffeinated (Coffea canephora); lot GR-1-S16"
    )
    # farm 1 consented to sharing data, not to giving its owner's name to the authorities
    (producer,) = commodity["producers"]
    coop_name = built["world"].coop["name"]
    assert (producer["name"], producer["country"]) == (coop_name, "VN")
    collection = dds.decoded_geojson(producer)
    check_geojson_rules(collection)
    assert [f["properties"]["ProducerName"] for f in collection["features"]] == [coop_name]
    assert "Nguyễn Văn A" not in json.dumps(doc, ensure_ascii=False)
    # the XML says what the JSON says
    xml_producer = root.find("dds:statement/dds:commodities/dds:producers", NS)
    assert xml_producer is not None
    assert xml_producer.findtext("dds:name", namespaces=NS) == coop_name
    assert (
        xml_producer.findtext("dds:geometryGeojson", namespaces=NS) == (producer["geometryGeojson"])
    )
    weight = root.findtext(
        "dds:statement/dds:commodities/dds:descriptors/c:goodsMeasure/c:netWeight", namespaces=NS
    )
    assert weight == "2"
    assert doc["split"]["split"] is False and doc["split"]["statements"] == 1
    assert doc["warnings"] == []


def test_cherry_lot_statement(conn: psycopg.Connection, keys: KeyRing, xsd: Path) -> None:
    built = build_chain(conn, keys=keys)
    doc = dds.build_dds(conn, built["lots"][0]["id"], IMPORT_DE)
    statements_valid(doc, xsd)
    (commodity,) = doc["statements"][0]["statement"]["commodities"]
    assert commodity["hsHeading"] == "090111"
    assert commodity["descriptors"]["descriptionOfGoods"].startswith("Coffee cherries, fresh")
    assert commodity["descriptors"]["goodsMeasure"]["netWeight"] == "20"


def test_roasted_packed_lot_statement(conn: psycopg.Connection, keys: KeyRing, xsd: Path) -> None:
    """The packed lot is roasted coffee (packing and blending are looked through): one
    commodity 0901 21 of 7.5 kg whose producers hold both farms' plots."""
    built = build_chain(conn, keys=keys)
    doc = dds.build_dds(conn, built["packed"]["id"], IMPORT_DE)
    statements_valid(doc, xsd)
    (commodity,) = doc["statements"][0]["statement"]["commodities"]
    assert commodity["hsHeading"] == "090121"
    assert commodity["descriptors"]["goodsMeasure"]["netWeight"] == "7.5"
    assert commodity["descriptors"]["descriptionOfGoods"].startswith("Roasted coffee")
    (producer,) = commodity["producers"]  # both farms without authority consent: the group
    collection = dds.decoded_geojson(producer)
    check_geojson_rules(collection)
    kinds = sorted(f["geometry"]["type"] for f in collection["features"])
    assert kinds == ["Point", "Polygon"]  # the 1-ha plot and the 6-ha one
    assert doc["producers"] == {"entries": 1, "named": 0, "groups": 1, "plots": 2}


def blended_world(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """Two farms of one cooperative: farm A's owner consented to giving the name to the
    authorities, farm B's did not. A's green is decaffeinated and roasted; B's green is
    blended with that roast (two kinds in one blend) and packed."""
    built = build_chain(conn, keys=keys)
    world = built["world"]
    coop = world.coop["id"]
    registry.set_farm_private(
        conn,
        world.farm["id"],
        keys=keys,
        owner_name="Nguyễn Văn A",
        data_consent=True,
        authority_consent=True,
    )
    rules = TraceRules(
        step_max_yield={**TraceRules().step_max_yield, "decaffeination": 1.0},
    )

    def step(
        name: str, inputs: list[tuple[Any, Any]], outputs: list[dict[str, Any]], hour: int
    ) -> list[dict[str, Any]]:
        return processing.record_transformation(
            conn,
            coop,
            step=name,
            occurred_at=T0 + 16 * DAY + hour * HOUR,
            inputs=inputs,
            outputs=outputs,
            rules=rules,
            keys=keys,
        )["outputs"]

    (decaf,) = step(
        "decaffeination",
        [(built["grade_b"]["id"], 2)],
        [{"code": "DC-1", "kg": 2, "kind": "green"}],
        1,
    )
    (roast,) = step(
        "roasting", [(decaf["id"], 2)], [{"code": "RD-1", "kg": 1.6, "kind": "roasted"}], 2
    )
    # farm B's own cherry, to green
    tree = built["tree4"]
    h = insert_harvest(conn, tree, 40, time=T0 + 2 * DAY)
    cherry = lots.build_cherry_lot(conn, coop, code="CH-B2", harvest_ids=[h], keys=keys)
    (green,) = step(
        "cherry_to_green", [(cherry["id"], 40)], [{"code": "GR-B2", "kg": 8, "kind": "green"}], 3
    )
    (blend,) = step(
        "blending",
        [(roast["id"], 1.6), (green["id"], 8)],
        [{"code": "BL-MIX", "kg": 9.6, "kind": "blend"}],
        4,
    )
    (packed,) = step(
        "packing", [(blend["id"], 9.6)], [{"code": "PK-MIX", "kg": 9.6, "kind": "packed"}], 5
    )
    conn.commit()
    return {**built, "decaf": decaf, "roast": roast, "mixed": packed}


def test_blend_of_two_kinds_is_two_commodities(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    world = blended_world(conn, keys)
    doc = dds.build_dds(conn, world["mixed"]["id"], IMPORT_DE)
    statements_valid(doc, xsd)
    commodities = doc["statements"][0]["statement"]["commodities"]
    by_hs = {c["hsHeading"]: c for c in commodities}
    assert set(by_hs) == {"090111", "090122"}  # farm B's green; farm A's decaf roast
    assert [c["position"] for c in commodities] == [1, 2]
    weights = {
        hs: Decimal(c["descriptors"]["goodsMeasure"]["netWeight"]) for hs, c in by_hs.items()
    }
    assert weights == {"090111": Decimal("8"), "090122": Decimal("1.6")}
    assert by_hs["090122"]["descriptors"]["descriptionOfGoods"].startswith(
        "Roasted coffee, decaffeinated"
    )
    # the decaf roast comes from farm A alone, whose owner consented: named
    (named,) = by_hs["090122"]["producers"]
    assert named["name"] == "Nguyễn Văn A"
    features = dds.decoded_geojson(named)["features"]
    check_geojson_rules(dds.decoded_geojson(named))
    assert {f["properties"]["ProducerName"] for f in features} == {"Nguyễn Văn A"}
    # farm B's green: the cooperative as producer group
    (group,) = by_hs["090111"]["producers"]
    assert group["name"] == world["world"].coop["name"]
    assert doc["producers"]["named"] == 1 and doc["producers"]["groups"] == 1


def test_decaffeinated_green(conn: psycopg.Connection, keys: KeyRing, xsd: Path) -> None:
    world = blended_world(conn, keys)
    doc = dds.build_dds(conn, world["decaf"]["id"], IMPORT_DE)
    statements_valid(doc, xsd)
    (commodity,) = doc["statements"][0]["statement"]["commodities"]
    assert commodity["hsHeading"] == "090112"


def test_authority_consent_is_a_recorded_fact_of_the_farm(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    farm = built["world"].farm
    registry.set_farm_private(
        conn, farm["id"], keys=keys, owner_name="Nguyễn Văn A", authority_consent=True
    )
    row = conn.execute(
        "select e.payload from farms f join trace_events e on e.seq = f.event_seq where f.id = %s",
        (farm["id"],),
    ).fetchone()
    (record,) = row["payload"]["records"]
    assert record["facts"]["authority_consent"] is True
    ok = registry_versions.verify_registry(conn, farm_ids=[farm["id"]])
    assert ok == []
    # given with psql, without a new signed version: named
    conn.execute(
        "update farm_private set authority_consent = false where farm_id = %s", (farm["id"],)
    )
    problems = registry_versions.verify_registry(conn, farm_ids=[farm["id"]])
    assert [p["fields"] for p in problems] == [["authority_consent"]]
    # a farm without it records no such fact (versions before 0046 stay valid)
    other = built["farm2"]
    assert registry_versions.verify_registry(conn, farm_ids=[other["id"]]) == []


def test_withdrawn_consent_names_the_group(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    farm = built["world"].farm
    registry.set_farm_private(
        conn, farm["id"], keys=keys, owner_name="Nguyễn Văn A", authority_consent=True
    )
    named = dds.build_dds(conn, built["grade_b"]["id"], IMPORT_DE)
    assert named["statements"][0]["statement"]["commodities"][0]["producers"][0]["name"] == (
        "Nguyễn Văn A"
    )
    conn.execute(
        "update farm_private set consent_withdrawn_at = now() where farm_id = %s", (farm["id"],)
    )
    group = dds.build_dds(conn, built["grade_b"]["id"], IMPORT_DE)
    producer = group["statements"][0]["statement"]["commodities"][0]["producers"][0]
    assert producer["name"] == built["world"].coop["name"]


# --- the filing -------------------------------------------------------------------------


def test_representative_operator_with_identifiers(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    built = build_chain(conn, keys=keys)
    filing = dds.Filing(
        activity="import",
        represented=dds.EconomicOperator(
            name="Kaffee Import GmbH",
            identifiers=(("eori", "de987654321"), ("vat", "DE123456789")),
            email="dds@kaffee-import.example",
            phone="+49 40 123456",
            address=dds.Address("DE", "Hafenstraße 1", "20457", "Hamburg"),
        ),
        country_of_activity="de",
        border_cross_country="NL",
        geolocation_confidential=True,
        internal_reference="KI-2026-0042",
        comment="Robusta from Đắk Lắk",
        grouped=("25DEXYZ1234567", "25DEXYZ1234567", "25nlabc0000001"),
    )
    doc = dds.build_dds(conn, built["packed"]["id"], filing)
    (root,) = statements_valid(doc, xsd)
    request = doc["statements"][0]
    assert request["operatorRole"] == "REPRESENTATIVE_OPERATOR"
    statement = request["statement"]
    assert statement["representedOperator"]["operatorReferenceNumber"] == [
        {"identifierType": "eori", "identifierValue": "DE987654321"},
        {"identifierType": "vat", "identifierValue": "DE123456789"},
    ]
    assert statement["borderCrossCountry"] == "NL" and statement["countryOfActivity"] == "DE"
    assert statement["geoLocationConfidential"] is True
    assert statement["groupedDeclarations"] == ["25DEXYZ1234567", "25NLABC0000001"]
    assert root.findtext("dds:statement/dds:geoLocationConfidential", namespaces=NS) == "true"
    refs = root.findall("dds:statement/dds:groupedDeclarations/c:groupedDeclaration", NS)
    assert [r.text for r in refs] == ["25DEXYZ1234567", "25NLABC0000001"]
    eori = root.find(
        "dds:statement/dds:representedOperator/c:operatorReferenceNumber/c:identifierValue", NS
    )
    assert eori is not None and eori.text == "DE987654321"
    assert doc["warnings"] == []


@pytest.mark.parametrize(
    ("filing", "field"),
    [
        (dds.Filing(activity="TRADE"), "activity"),
        (dds.Filing(role="OPERATOR", represented=dds.EconomicOperator(name="X")), "represented"),
        (dds.Filing(role="REPRESENTATIVE_OPERATOR"), "represented"),
        (
            dds.Filing(represented=dds.EconomicOperator(identifiers=(("eori", "DE1"),))),
            "represented.name",
        ),
        (
            dds.Filing(operator=dds.EconomicOperator(identifiers=(("eori", "12345"),))),
            "operator.identifiers",
        ),
        (
            dds.Filing(operator=dds.EconomicOperator(identifiers=(("passport", "X1"),))),
            "operator.identifiers",
        ),
        (dds.Filing(country_of_activity="VN"), "country_of_activity"),
        (dds.Filing(activity="DOMESTIC", border_cross_country="DE"), "border_cross_country"),
        (dds.Filing(internal_reference="X" * 36), "internal_reference"),
        (dds.Filing(grouped=("NOT-A-REFERENCE",)), "grouped"),
    ],
)
def test_the_filing_refuses_what_a_statement_cannot_hold(filing: dds.Filing, field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        dds.checked_filing(filing)
    assert exc.value.details["field"] == field


def test_the_filing_warns_of_what_the_eu_will_ask() -> None:
    filing, warnings = dds.checked_filing(dds.Filing())
    assert filing.role == "OPERATOR" and filing.activity == "IMPORT"
    assert any("country of activity" in w for w in warnings)
    assert any("EORI" in w for w in warnings)
    domestic, warnings = dds.checked_filing(
        dds.Filing(activity="DOMESTIC", country_of_activity="FR")
    )
    assert domestic.border_cross_country is None and warnings == []


def test_a_lot_from_no_plot_is_refused(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    coop = built["world"].coop["id"]
    empty = conn.execute(
        "insert into lots (public_id, cooperative_id, code, kind, quantity_kg, remaining_kg)"
        " values ('empty-lot-000000000000', %s, 'EMPTY', 'green', 1, 1) returning id",
        (coop,),
    ).fetchone()
    with pytest.raises(RuleViolation) as exc:
        dds.build_dds(conn, empty["id"], IMPORT_DE)
    assert exc.value.rule == "no_producers"


# --- the EU system's limits --------------------------------------------------------------


def synthetic(n: int, *, size: int = 8, hs: str = "090111") -> dds.Commodity:
    producers = tuple(
        dds.Producer(
            name=f"P{i}",
            country="VN",
            geojson="A" * size,
            kg=Decimal("1"),
            plots=(f"PL{i}",),
            named=False,
        )
        for i in range(n)
    )
    return dds.Commodity("green", False, hs, "Green coffee", Decimal(n), producers)


def test_split_at_the_producers_per_commodity() -> None:
    statements = dds.split_statements([synthetic(2_500)], dds.Limits())
    assert len(statements) == 1
    assert [len(p.producers) for p in statements[0]] == [1_000, 1_000, 500]


def test_split_at_the_producers_per_statement() -> None:
    statements = dds.split_statements(
        [synthetic(6_000), synthetic(6_000, hs="090121")], dds.Limits()
    )
    assert [sum(len(p.producers) for p in s) for s in statements] == [10_000, 2_000]
    assert all(len(p.producers) <= 1_000 for s in statements for p in s)
    # the second commodity runs on into the second statement
    assert [p.commodity.hs_heading for p in statements[1]] == ["090121", "090121"]


def test_split_at_the_geolocation_bytes() -> None:
    limits = dds.Limits(geolocation_bytes_per_statement=100)
    statements = dds.split_statements([synthetic(25, size=10)], limits)
    assert [sum(p.geolocation_bytes for p in s) for s in statements] == [100, 100, 50]


def test_split_at_the_commodities_per_statement() -> None:
    limits = dds.Limits(producers_per_commodity=1, commodities_per_statement=3)
    statements = dds.split_statements([synthetic(7)], limits)
    assert [len(s) for s in statements] == [3, 3, 1]


def test_split_statements_are_valid_and_reported(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    """At limits small enough for the mixed lot (three producers over two commodities),
    every statement stays valid, weights still add up, and the report says why."""
    world = blended_world(conn, keys)
    limits = dds.Limits(producers_per_commodity=1, producers_per_statement=1)
    doc = dds.build_dds(conn, world["mixed"]["id"], IMPORT_DE, limits=limits)
    statements_valid(doc, xsd)
    split = doc["split"]
    assert split["split"] is True and split["statements"] == len(doc["statements"]) == 2
    assert any("per statement" in r for r in split["reasons"])
    refs = [s["statement"]["internalReferenceNumber"] for s in doc["statements"]]
    assert refs == ["PK-MIX-1/2", "PK-MIX-2/2"]
    total = sum(
        Decimal(c["descriptors"]["goodsMeasure"]["netWeight"])
        for s in doc["statements"]
        for c in s["statement"]["commodities"]
    )
    assert total == Decimal("9.6")


def test_a_producer_larger_than_a_statement_is_given_in_entries(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    """The producer group's GeoJSON passes the (small) byte limit: it is given as several
    entries of the same name, whole plots each, in several statements."""
    built = build_chain(conn, keys=keys)
    whole = dds.build_dds(conn, built["packed"]["id"], IMPORT_DE)
    (producer,) = whole["statements"][0]["statement"]["commodities"][0]["producers"]
    size = len(producer["geometryGeojson"])
    limits = dds.Limits(geolocation_bytes_per_statement=size - 1)
    doc = dds.build_dds(conn, built["packed"]["id"], IMPORT_DE, limits=limits)
    statements_valid(doc, xsd)
    entries = [
        p for s in doc["statements"] for c in s["statement"]["commodities"] for p in c["producers"]
    ]
    assert len(entries) == 2 and {p["name"] for p in entries} == {producer["name"]}
    assert all(len(p["geometryGeojson"]) < size for p in entries)
    assert any("producer entries" in r for r in doc["split"]["reasons"])
    with pytest.raises(RuleViolation) as exc:
        dds.build_dds(
            conn,
            built["packed"]["id"],
            IMPORT_DE,
            limits=dds.Limits(geolocation_bytes_per_statement=50),
        )
    assert exc.value.rule == "geolocation_too_large"


def test_base64_is_the_geojson_text() -> None:
    text = '{"type":"FeatureCollection","features":[]}'
    encoded = base64.b64encode(text.encode()).decode()
    assert dds.decoded_geojson({"geometryGeojson": encoded}) == json.loads(text)


def test_the_schema_check_refuses_an_invalid_statement(
    conn: psycopg.Connection, keys: KeyRing, xsd: Path
) -> None:
    built = build_chain(conn, keys=keys)
    doc = dds.build_dds(conn, built["grade_b"]["id"], IMPORT_DE)
    request = json.loads(json.dumps(doc["statements"][0]))
    request["statement"]["commodities"][0]["hsHeading"] = "0901AB"
    with pytest.raises(ValidationFailed) as exc:
        dds.validate_xml(dds.to_xml(request), xsd)
    assert "hsHeading" in exc.value.message
    with pytest.raises(ValidationFailed) as missing:
        dds.validate_xml(dds.to_xml(doc["statements"][0]), xsd.parent)
    assert missing.value.details["field"] == "schemas"
