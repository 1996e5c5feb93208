"""EPCIS identifiers without a GTIN, quantities, and a control that the schema bites; the
events' local offsets, transformations listing every output, typed measurements."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import psycopg

from coffeetrace.trace import epcis, lots, processing, zones
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, harvest_trees
from tests.trace.chain import build_chain


def _validator(path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        json.loads(path.read_text()), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_cherry_lot_without_gtin_uses_its_public_page(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=3)
    hs = harvest_trees(conn, w.trees, "3.5")
    lot = lots.build_cherry_lot(conn, w.coop["id"], code="C-9", harvest_ids=hs, keys=keys)
    doc = epcis.export_epcis(conn, lot["id"], "https://trace.example.vn/")
    validator = _validator(epcis_schema_path)
    assert list(validator.iter_errors(doc)) == []
    events = doc["epcisBody"]["eventList"]
    assert len(events) == 3
    classes = {q["epcClass"] for e in events for q in e["quantityList"]}
    assert classes == {f"https://trace.example.vn/l/{lot['public_id']}"}
    assert sum(Decimal(str(e["quantityList"][0]["quantity"])) for e in events) == Decimal("10.5")
    assert {e["readPoint"]["id"] for e in events} == {
        f"https://trace.example.vn/t/{t['public_id']}" for t in w.trees
    }
    assert all(e["ilmd"]["ct:cultivar"] == "TR4" for e in events)
    # the validator is not vacuous: a broken copy fails
    broken = copy.deepcopy(doc)
    del broken["epcisBody"]["eventList"][0]["eventTimeZoneOffset"]
    broken["epcisBody"]["eventList"][1]["quantityList"][0]["uom"] = "kilograms"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_digital_link_percent_encodes_the_batch() -> None:
    lot = {"gtin": "08930000000018", "code": "A/B 1", "public_id": "x"}
    assert epcis.lot_uri("https://t.vn", lot) == "https://t.vn/01/08930000000018/10/A%2FB%201"


BASE = "https://trace.example.vn"


def lots_with_codes(conn: psycopg.Connection, *codes: str) -> list[dict[str, Any]]:
    return conn.execute("select * from lots where code = any(%s)", (list(codes),)).fetchall()


def _events(doc: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [
        e for e in doc["epcisBody"]["eventList"] if all(e.get(k) == v for k, v in match.items())
    ]


def _assert_valid(doc: dict[str, Any], schema_path: Path) -> None:
    errors = sorted(_validator(schema_path).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_events_carry_the_offset_of_the_place_they_happened(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    doc = epcis.export_epcis(conn, built["packed"]["id"], BASE)
    _assert_valid(doc, epcis_schema_path)
    events = doc["epcisBody"]["eventList"]
    # the cooperative and its plots are in Vietnam: Asia/Ho_Chi_Minh, +07:00 all year
    assert {e["eventTimeZoneOffset"] for e in events} == {"+07:00"}
    # eventTime stays the UTC instant, written in UTC
    assert all(e["eventTime"].endswith("Z") for e in events)
    harvest_times = sorted(e["eventTime"] for e in _events(doc, bizStep="commissioning"))
    assert harvest_times[0] == T0.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    (drying,) = _events(doc, **{"ct:step": "drying"})
    assert datetime.fromisoformat(drying["eventTime"]) == T0 + timedelta(days=10)


def test_the_offset_follows_the_cooperative_country_and_its_rules(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    """Not a constant: the zone comes from where the cooperative is (a Nepali cooperative
    is at +05:45, the tz database's offset for Asia/Kathmandu)."""
    built = build_chain(conn, keys=keys)
    conn.execute(
        "update cooperatives set country = 'NP' where id = %s", (built["world"].coop["id"],)
    )
    doc = epcis.export_epcis(conn, built["packed"]["id"], BASE)
    _assert_valid(doc, epcis_schema_path)
    expected = {
        zones.utc_offset(datetime.fromisoformat(e["eventTime"]), ZoneInfo("Asia/Kathmandu"))
        for e in doc["epcisBody"]["eventList"]
    }
    assert expected == {"+05:45"}
    assert {e["eventTimeZoneOffset"] for e in doc["epcisBody"]["eventList"]} == expected


def test_every_output_of_a_transformation_is_listed_and_balances(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    doc = epcis.export_epcis(conn, built["packed"]["id"], BASE)
    _assert_valid(doc, epcis_schema_path)
    (grading,) = _events(doc, **{"ct:step": "grading"})
    grade_b = built["grade_b"]
    # grade B (2 kg) is not in the packed lot, but it is an output of the grading
    outputs = {o["epcClass"]: o for o in grading["outputQuantityList"]}
    assert set(outputs) == {
        f"{BASE}/l/{lot['public_id']}" for lot in lots_with_codes(conn, "GR-1-S18", "GR-1-S16")
    }
    assert outputs[f"{BASE}/l/{grade_b['public_id']}"] == {
        "epcClass": f"{BASE}/l/{grade_b['public_id']}",
        "quantity": 2.0,
        "uom": "KGM",
    }
    assert sum(Decimal(str(o["quantity"])) for o in outputs.values()) == Decimal(5)
    assert sum(Decimal(str(i["quantity"])) for i in grading["inputQuantityList"]) == Decimal(5)
    # every transformation: the listed kilograms are the ones the transformation recorded
    recorded = {
        f"urn:uuid:{r['id']}": r
        for r in conn.execute("select id, input_kg, output_kg from transformations").fetchall()
    }
    transformations = _events(doc, type="TransformationEvent")
    assert len(transformations) == 6
    for event in transformations:
        row = recorded[event["transformationID"]]
        ins = sum(Decimal(str(i["quantity"])) for i in event["inputQuantityList"])
        outs = sum(Decimal(str(o["quantity"])) for o in event["outputQuantityList"])
        assert (ins, outs) == (row["input_kg"], row["output_kg"]), event["ct:step"]
    # packing: the children of the packed lots add up to what the step took
    packing = _events(doc, type="AggregationEvent")
    taken = sum(Decimal(str(c["quantity"])) for e in packing for c in e["childQuantityList"])
    assert taken == Decimal("7.5")


def test_a_split_packing_lists_every_packed_lot_and_the_whole_input(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=3)
    coop = w.coop["id"]
    hs = harvest_trees(conn, w.trees, "10")
    cherry = lots.build_cherry_lot(conn, coop, code="C-1", harvest_ids=hs, keys=keys)
    packed = processing.record_transformation(
        conn,
        coop,
        step="packing",
        occurred_at=T0 + timedelta(days=1),
        inputs=[(cherry["id"], Decimal("10"))],
        outputs=[{"code": f"PK-{i}", "kg": Decimal("3.333"), "kind": "packed"} for i in range(3)],
        keys=keys,
    )["outputs"]
    doc = epcis.export_epcis(conn, packed[0]["id"], BASE)
    _assert_valid(doc, epcis_schema_path)
    events = _events(doc, type="AggregationEvent")
    assert {e["parentID"] for e in events} == {f"{BASE}/l/{p['public_id']}" for p in packed}
    assert {e["ct:packedKg"] for e in events} == {3.333}
    taken = sum(Decimal(str(c["quantity"])) for e in events for c in e["childQuantityList"])
    assert taken == Decimal("10")


def test_measurements_are_typed_as_the_vocabulary_defines_them(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=3)
    coop = w.coop["id"]
    hs = harvest_trees(conn, w.trees, "10")
    cherry = lots.build_cherry_lot(conn, coop, code="C-1", harvest_ids=hs, keys=keys)
    (dried,) = processing.record_transformation(
        conn,
        coop,
        step="drying",
        occurred_at=T0 + timedelta(days=10),
        inputs=[(cherry["id"], Decimal("30"))],
        outputs=[{"code": "D-1", "kg": Decimal("12"), "kind": "dried_cherry"}],
        # as the demo and API clients record them: kilograms as text or Decimal (which
        # the store keeps as text), counts as text, a measurement of no known term
        measurements={
            "moisture_pct": "12.5",
            "husk_kg": Decimal("4.600"),
            "defect_count": "4",
            "days": 16,
            "method": "natural",
            "brix_reading": "21.5",
            "sample_code": "S-7",
        },
        keys=keys,
    )["outputs"]
    stored = conn.execute(
        "select measurements from transformations where step = 'drying'"
    ).fetchone()["measurements"]
    assert stored["husk_kg"] == "4.600"  # the store has text: the export must type it
    doc = epcis.export_epcis(conn, dried["id"], BASE)
    _assert_valid(doc, epcis_schema_path)
    (drying,) = _events(doc, type="TransformationEvent")
    ilmd = drying["ilmd"]
    assert ilmd["ct:husk_kg"] == 4.6 and type(ilmd["ct:husk_kg"]) is float
    assert ilmd["ct:moisture_pct"] == 12.5 and type(ilmd["ct:moisture_pct"]) is float
    assert ilmd["ct:defect_count"] == 4 and type(ilmd["ct:defect_count"]) is int
    assert ilmd["ct:days"] == 16 and ilmd["ct:method"] == "natural"
    assert ilmd["ct:otherMeasurement"] == [
        {"ct:name": "brix_reading", "ct:value": 21.5},
        {"ct:name": "sample_code", "ct:value": "S-7"},
    ]
    assert '"ct:husk_kg": 4.6' in json.dumps(doc)
