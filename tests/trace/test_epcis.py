"""EPCIS identifiers without a GTIN, quantities, and a control that the schema bites."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import psycopg

from coffeetrace.trace import epcis, lots
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import harvest_trees


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
