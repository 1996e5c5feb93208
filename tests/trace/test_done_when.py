"""The issue's "done when": harvests stored as ingest stores them -> cherry lot -> drying ->
hulling -> grading into two grades -> blending with another farm's lot -> roasting ->
packing; exact backward shares, forward reach, EPCIS and EUDR exports, tamper evidence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import geojson
import jsonschema
import psycopg
import pytest
import shapely.geometry

from coffeetrace.trace import (
    chain,
    epcis,
    eudr,
    verification,
)
from coffeetrace.trace.keys import KeyRing
from tests.trace.builders import T0
from tests.trace.chain import build_chain, check_backward_shares, check_forward_reach


def test_backward_trace_gives_exact_trees_and_shares(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    check_backward_shares(conn, build_chain(conn, keys=keys))


def test_forward_from_every_tree_reaches_the_packed_lot(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    check_forward_reach(conn, build_chain(conn, keys=keys))


def test_epcis_export_validates_against_gs1_schema(
    conn: psycopg.Connection, epcis_schema_path: Path, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    plot = built["world"].plot
    conn.execute(
        "insert into sensor_readings (time, device_id, plot_id, metric, value) values"
        " ('2026-06-01 10:00+00', 'soil', %(p)s, 'soilMoistureVwc', 30),"
        " ('2026-06-02 10:00+00', 'soil', %(p)s, 'soilMoistureVwc', 34),"
        " ('2026-06-02 11:00+00', 'soil', %(p)s, 'precipitation', 4.5)",
        {"p": plot["id"]},
    )
    doc = epcis.export_epcis(conn, built["packed"]["id"], "https://trace.example.vn")
    schema = json.loads(epcis_schema_path.read_text())
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    events = doc["epcisBody"]["eventList"]
    kinds = [e["type"] for e in events]
    assert kinds.count("ObjectEvent") == 4 + 1  # four harvests, one plot's sensor summary
    assert kinds.count("AggregationEvent") == 1  # packing
    assert kinds.count("TransformationEvent") == 6
    packing = next(e for e in events if e["type"] == "AggregationEvent")
    assert packing["parentID"] == "https://trace.example.vn/01/08930000000033/10/PK-1"
    sensors = next(e for e in events if e.get("bizStep") == "sensor_reporting")
    reports = {
        el["sensorReport"][0]["ct:metric"]: el["sensorReport"][0]
        for el in sensors["sensorElementList"]
    }
    assert reports["soilMoistureVwc"]["meanValue"] == pytest.approx(32.0)
    assert reports["precipitation"]["value"] == pytest.approx(4.5)
    harvest = next(e for e in events if e.get("bizStep") == "commissioning")
    assert (
        harvest["ilmd"]["cbvmda:lotNumber"] == "CH-1"
        or harvest["ilmd"]["cbvmda:lotNumber"] == "CH-2"
    )
    # the schema cannot fail on a wrong time order or a missing quantity: check them here
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)


def test_eudr_export_follows_the_geometry_rules(conn: psycopg.Connection, keys: KeyRing) -> None:
    built = build_chain(conn, keys=keys)
    collection = eudr.export_eudr(conn, built["packed"]["id"])
    assert collection["type"] == "FeatureCollection"
    by_code = {f["properties"]["PlotCode"]: f for f in collection["features"]}
    small, big = by_code["P-1"], by_code["P-BIG"]
    assert small["geometry"]["type"] == "Point" and small["properties"]["Area"] == 1.0
    assert big["geometry"]["type"] == "Polygon" and "Area" not in big["properties"]
    ring = big["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    lon, lat = small["geometry"]["coordinates"]
    assert 108 < lon < 109 and 12 < lat < 13  # [longitude, latitude] order
    for f in collection["features"]:
        props = f["properties"]
        assert props["ProducerCountry"] == "VN"
        assert props["ProducerName"] and props["ProductionPlace"]
    # the owner consented to sharing data, so the declared producer is the owner
    assert small["properties"]["ProducerName"] == "Nguyễn Văn A"
    assert big["properties"]["ProducerName"] == "F-OTHER"  # no consent to show its name
    text = eudr.dumps(collection)
    assert json.loads(text) == collection
    # outside checkers: the geojson package's RFC 7946 rules, and GEOS validity for polygons
    parsed = geojson.loads(text)
    assert parsed.is_valid, parsed.errors()
    for f in collection["features"]:
        assert shapely.geometry.shape(f["geometry"]).is_valid
    blocks = re.findall(r'"coordinates": ([\[\]\d\s.,-]+)', text)
    numbers = [n for b in blocks for n in re.findall(r"-?\d+(?:\.\d+)?", b)]
    assert len(numbers) == 2 + 2 * 5
    assert all(len(n.split(".")[1]) >= 6 for n in numbers if "." in n), numbers
    assert all("." in n for n in numbers)


@pytest.mark.parametrize(
    "edit",
    [
        "update trace_events set payload = jsonb_set(payload, '{lot,quantity_kg}', '\"21.000\"')"
        " where seq = %(seq)s",
        "update trace_events set occurred_at = occurred_at + interval '1 day' where seq = %(seq)s",
        "update trace_events set kind = 'lot_createdX' where seq = %(seq)s",
        "update trace_events set prev_hash = repeat('1', 64) where seq = %(seq)s",
        "update trace_events set lot_ids = '{}' where seq = %(seq)s",
        "update trace_events set payload = jsonb_set(payload, '{lot,id}', "
        "to_jsonb(gen_random_uuid())) where seq = %(seq)s",
    ],
)
def test_editing_the_first_event_is_named(
    conn: psycopg.Connection, edit: str, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    # the lot's first event (registry events are checked by registry_versions, ingest
    # batches by batches.py: tests/trace/test_tamper.py)
    first = conn.execute(
        "select seq, kind from trace_events where kind not in ('registry', 'ingest_batch')"
        " order by seq limit 1"
    ).fetchone()
    assert verification.verify_lot(conn, built["packed"]["id"], keys=keys)["ok"] is True
    conn.execute(edit, {"seq": first["seq"]})  # type: ignore[index]
    report = verification.verify_lot(conn, built["packed"]["id"], keys=keys)
    assert report["ok"] is False
    assert first["seq"] in {p["seq"] for p in report["problems"]}  # type: ignore[index]


def test_editing_any_stored_event_makes_verify_fail_and_name_it(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    packed = built["packed"]["id"]
    events = conn.execute(
        "select seq, kind from trace_events where kind not in ('registry', 'ingest_batch')"
        " order by seq"
    ).fetchall()
    assert len(events) == 9  # two cherry lots and seven steps
    for ev in events:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "update trace_events set payload = payload || '{\"x\": 1}' where seq = %s",
                (ev["seq"],),
            )  # type: ignore[index]
            report = verification.verify_lot(conn, packed, keys=keys)
            named = {(p["seq"], p["kind"]) for p in report["problems"]}
        assert report["ok"] is False
        assert (ev["seq"], ev["kind"]) in named  # type: ignore[index]
    # an edit that recomputes the event's own hash still breaks the next event's link
    ev = events[3]
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update trace_events set payload = payload || '{\"x\": 1}' where seq = %s", (ev["seq"],)
        )  # type: ignore[index]
        row = conn.execute("select * from trace_events where seq = %s", (ev["seq"],)).fetchone()
        forged = chain.event_hash(
            seq=row["seq"],
            cooperative_id=row["cooperative_id"],  # type: ignore[index]
            kind=row["kind"],
            lot_ids=row["lot_ids"],  # type: ignore[index]
            occurred_at=row["occurred_at"],
            payload=row["payload"],  # type: ignore[index]
            prev_hash=row["prev_hash"],
        )  # type: ignore[index]
        conn.execute("update trace_events set hash = %s where seq = %s", (forged, ev["seq"]))  # type: ignore[index]
        report = verification.verify_lot(conn, packed, keys=keys)
    assert not report["ok"]
    assert any(
        p["seq"] == ev["seq"] and p["problem"] == "chain_broken"  # type: ignore[index]
        for p in report["problems"]
    )
    assert verification.verify_lot(conn, packed, keys=keys)["ok"] is True


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            "update lots set quantity_kg = quantity_kg + 1, remaining_kg = remaining_kg + 1"
            " where code = 'CH-1'",
            "row_mismatch",
        ),
        (
            "update lot_harvests set kg = kg - 1 where lot_id = "
            "(select id from lots where code = 'CH-1') and kg = 10",
            "row_mismatch",
        ),
        (
            "update transformation_inputs set kg = 2.5 where lot_id = (select id from lots"
            " where code = 'GR-1-S18')",
            "row_mismatch",
        ),
        ("update transformations set place = 'elsewhere' where step = 'drying'", "row_mismatch"),
        (
            "update transformations set measurements = '{\"moisture_pct\": 9}' "
            "where step = 'drying'",
            "row_mismatch",
        ),
        ("update lots set remaining_kg = remaining_kg + 1 where code = 'GR-2'", "row_mismatch"),
        (
            "delete from trace_events where kind = 'lot_created' "
            "and payload->'lot'->>'code' = 'CH-2'",
            "missing_event",
        ),
    ],
)
def test_rows_that_no_longer_match_their_events_are_named(
    conn: psycopg.Connection, edit: str, problem: str, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    conn.execute(edit)
    report = verification.verify_lot(conn, built["packed"]["id"], keys=keys)
    assert report["ok"] is False
    assert problem in {p["problem"] for p in report["problems"]}


def test_mass_balance_holds_along_the_chain(conn: psycopg.Connection, keys: KeyRing) -> None:
    build_chain(conn, keys=keys)
    rows = conn.execute("select step, input_kg, output_kg from transformations").fetchall()
    from coffeetrace.settings import DEFAULT_STEP_MAX_YIELD

    for r in rows:
        assert r["output_kg"] <= r["input_kg"] * Decimal(str(DEFAULT_STEP_MAX_YIELD[r["step"]]))  # type: ignore[index]
    left = conn.execute("select code, remaining_kg from lots order by code").fetchall()
    assert {r["code"]: r["remaining_kg"] for r in left}["GR-1-S16"] == Decimal("2.000")  # type: ignore[index]
    assert {r["code"]: r["remaining_kg"] for r in left}["PK-1"] == Decimal("7.500")  # type: ignore[index]
    assert datetime.now(UTC) > T0
