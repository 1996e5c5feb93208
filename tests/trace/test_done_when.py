"""The issue's "done when": harvests stored as ingest stores them -> cherry lot -> drying ->
hulling -> grading into two grades -> blending with another farm's lot -> roasting ->
packing; exact backward shares, forward reach, EPCIS and EUDR exports, tamper evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import geojson
import jsonschema
import psycopg
import pytest
import shapely.geometry

from coffeetrace.trace import (
    chain,
    epcis,
    eudr,
    genealogy,
    lots,
    processing,
    registry,
    verification,
)
from tests.factories import World, make_world, square
from tests.trace.builders import T0, insert_harvest

DAY = timedelta(days=1)


Harvest = Callable[[psycopg.Connection, World, dict[str, Any], float, datetime], Any]


def stored_harvest(
    conn: psycopg.Connection, world: World, tree: dict[str, Any], kg: float, time: datetime
) -> Any:
    return insert_harvest(conn, tree, kg, time=time)


def build_chain(conn: psycopg.Connection, harvest: Harvest = stored_harvest) -> dict[str, Any]:
    """The whole chain; `harvest(conn, world, tree, kg, time)` stores one harvest (directly,
    or over MQTT through ingest) and returns its id."""
    world = make_world(conn, trees=3)
    coop = world.coop["id"]
    product = registry.create_product(
        conn, coop, "Robusta Đắk Lắk roasted", kind="packed", gtin="08930000000018"
    )
    # a second farm of the same cooperative, with a 6-ha plot (polygon in the EUDR export)
    farm2 = registry.create_farm(conn, coop, "F-OTHER", display_name="Other farm")
    plot2 = registry.create_plot(conn, coop, farm2["id"], "P-BIG", square(108.1, 12.7, 0.025), 6.0)
    tree4 = registry.create_tree(conn, coop, plot2["id"], "T-BIG-1", lon=108.11, lat=12.71)
    # farm 1: trees give 10, 6 and 4 kg of cherry (shares 0.5, 0.3, 0.2 of its lot)
    kgs = [10, 6, 4]
    harvests = [
        harvest(conn, world, t, kg, T0 + i * DAY)
        for i, (t, kg) in enumerate(zip(world.trees, kgs, strict=True))
    ]
    h4 = harvest(conn, world, tree4, 30, T0)
    lot1 = lots.build_cherry_lot(conn, coop, code="CH-1", harvest_ids=harvests)
    lot2 = lots.build_cherry_lot(
        conn, coop, code="CH-2", tree_ids=[tree4["id"]], since=T0 - DAY, until=T0 + DAY
    )
    assert lot2["harvests"][0]["harvest_id"] == h4

    def step(
        name: str, inputs: list[tuple[Any, Any]], outputs: list[dict[str, Any]], day: int, **kw: Any
    ) -> list[dict[str, Any]]:
        return processing.record_transformation(
            conn, coop, step=name, occurred_at=T0 + day * DAY, inputs=inputs, outputs=outputs, **kw
        )["outputs"]

    dried = step(
        "drying",
        [(lot1["id"], 20)],
        [{"code": "DR-1", "kg": 10, "kind": "dried_cherry"}],
        10,
        place="Ea Tu drying yard",
        measurements={"moisture_pct": 12.5},
    )
    hulled = step(
        "hulling", [(dried[0]["id"], 10)], [{"code": "GR-1", "kg": 5, "kind": "green"}], 12
    )
    grade_a, grade_b = step(
        "grading",
        [(hulled[0]["id"], 5)],
        [
            {"code": "GR-1-S18", "kg": 3, "kind": "green"},
            {"code": "GR-1-S16", "kg": 2, "kind": "green"},
        ],
        13,
        measurements={"screen_size": 18, "defect_count": 4},
        evidence=[{"type": "certificate", "name": "4C", "url": "https://example.org/4c.pdf"}],
    )
    other_green = step(
        "cherry_to_green", [(lot2["id"], 30)], [{"code": "GR-2", "kg": 6, "kind": "green"}], 12
    )
    blend = step(
        "blending",
        [(grade_a["id"], 3), (other_green[0]["id"], 6)],
        [{"code": "BL-1", "kg": 9, "kind": "blend"}],
        14,
        measurements={"cupping_score": 84.5},
    )
    roasted = step(
        "roasting",
        [(blend[0]["id"], 9)],
        [{"code": "RO-1", "kg": 7.5, "kind": "roasted"}],
        15,
        measurements={"roast_level": "medium"},
    )
    packed = step(
        "packing",
        [(roasted[0]["id"], 7.5)],
        [{"code": "PK-1", "kg": 7.5, "kind": "packed", "product_id": product["id"]}],
        16,
    )
    conn.commit()
    return {
        "world": world,
        "tree4": tree4,
        "packed": packed[0],
        "grade_b": grade_b,
        "lots": [lot1, lot2],
        "plot2": plot2,
        "farm2": farm2,
    }


def test_backward_trace_gives_exact_trees_and_shares(conn: psycopg.Connection) -> None:
    check_backward_shares(conn, build_chain(conn))


def check_backward_shares(conn: psycopg.Connection, built: dict[str, Any]) -> None:
    trace = genealogy.trace_backward(conn, built["packed"]["id"])
    shares = {t["tag_code"]: t["share"] for t in trace["trees"]}
    # the blend is 3 kg of farm 1's grade (1/3) and 6 kg of farm 2's green (2/3);
    # inside farm 1's lot the trees gave 10, 6 and 4 of 20 kg
    expected = {
        "T-00000": 1 / 3 * 0.5,
        "T-00001": 1 / 3 * 0.3,
        "T-00002": 1 / 3 * 0.2,
        "T-BIG-1": 2 / 3,
    }
    assert shares.keys() == expected.keys()
    for tag, share in expected.items():
        assert shares[tag] == pytest.approx(share, abs=1e-12)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    farms = {f["code"]: f["kg"] for f in trace["farms"]}
    assert farms == {built["world"].farm["code"]: pytest.approx(2.5), "F-OTHER": pytest.approx(5.0)}
    steps = [t["step"] for t in trace["transformations"]]
    assert sorted(steps) == sorted(
        ["drying", "hulling", "grading", "cherry_to_green", "blending", "roasting", "packing"]
    )
    # the second grade is not in the packed lot
    assert built["grade_b"]["id"] not in {r["lot_id"] for r in trace["lots"]}


def test_forward_from_every_tree_reaches_the_packed_lot(conn: psycopg.Connection) -> None:
    check_forward_reach(conn, build_chain(conn))


def check_forward_reach(conn: psycopg.Connection, built: dict[str, Any]) -> None:
    packed_id = built["packed"]["id"]
    backward = {
        t["tree_id"]: t["share"] for t in genealogy.trace_backward(conn, packed_id)["trees"]
    }
    for tree in [*built["world"].trees, built["tree4"]]:
        fwd = genealogy.trace_forward(conn, tree_id=tree["id"])
        by_id = {r["lot_id"]: r for r in fwd["lots"]}
        assert packed_id in by_id
        assert by_id[packed_id]["public_id"] == built["packed"]["public_id"]
        assert by_id[packed_id]["terminal"] is True
        assert by_id[packed_id]["share"] == pytest.approx(backward[tree["id"]], abs=1e-12)
    # from farm 1's first tree the second grade is reached too (a recall must find it)
    fwd = genealogy.trace_forward(conn, tree_id=built["world"].trees[0]["id"])
    assert built["grade_b"]["id"] in {r["lot_id"] for r in fwd["lots"]}
    # the other farm's tree does not reach farm 1's second grade
    fwd4 = genealogy.trace_forward(conn, farm_id=built["farm2"]["id"])
    assert built["grade_b"]["id"] not in {r["lot_id"] for r in fwd4["lots"]}


def test_epcis_export_validates_against_gs1_schema(
    conn: psycopg.Connection, epcis_schema_path: Path
) -> None:
    built = build_chain(conn)
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
    assert packing["parentID"] == "https://trace.example.vn/01/08930000000018/10/PK-1"
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


def test_eudr_export_follows_the_geometry_rules(conn: psycopg.Connection) -> None:
    built = build_chain(conn)
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
def test_editing_the_first_event_is_named(conn: psycopg.Connection, edit: str) -> None:
    built = build_chain(conn)
    first = conn.execute("select seq, kind from trace_events order by seq limit 1").fetchone()
    assert verification.verify_lot(conn, built["packed"]["id"])["ok"] is True
    conn.execute(edit, {"seq": first["seq"]})  # type: ignore[index]
    report = verification.verify_lot(conn, built["packed"]["id"])
    assert report["ok"] is False
    assert first["seq"] in {p["seq"] for p in report["problems"]}  # type: ignore[index]


def test_editing_any_stored_event_makes_verify_fail_and_name_it(conn: psycopg.Connection) -> None:
    built = build_chain(conn)
    packed = built["packed"]["id"]
    events = conn.execute("select seq, kind from trace_events order by seq").fetchall()
    assert len(events) == 9  # two cherry lots and seven steps
    for ev in events:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "update trace_events set payload = payload || '{\"x\": 1}' where seq = %s",
                (ev["seq"],),
            )  # type: ignore[index]
            report = verification.verify_lot(conn, packed)
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
        report = verification.verify_lot(conn, packed)
    assert not report["ok"]
    assert any(
        p["seq"] == ev["seq"] and p["problem"] == "chain_broken"  # type: ignore[index]
        for p in report["problems"]
    )
    assert verification.verify_lot(conn, packed)["ok"] is True


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
    conn: psycopg.Connection, edit: str, problem: str
) -> None:
    built = build_chain(conn)
    conn.execute(edit)
    report = verification.verify_lot(conn, built["packed"]["id"])
    assert report["ok"] is False
    assert problem in {p["problem"] for p in report["problems"]}


def test_mass_balance_holds_along_the_chain(conn: psycopg.Connection) -> None:
    build_chain(conn)
    rows = conn.execute("select step, input_kg, output_kg from transformations").fetchall()
    from coffeetrace.settings import DEFAULT_STEP_MAX_YIELD

    for r in rows:
        assert r["output_kg"] <= r["input_kg"] * Decimal(str(DEFAULT_STEP_MAX_YIELD[r["step"]]))  # type: ignore[index]
    left = conn.execute("select code, remaining_kg from lots order by code").fetchall()
    assert {r["code"]: r["remaining_kg"] for r in left}["GR-1-S16"] == Decimal("2.000")  # type: ignore[index]
    assert {r["code"]: r["remaining_kg"] for r in left}["PK-1"] == Decimal("7.500")  # type: ignore[index]
    assert datetime.now(UTC) > T0
