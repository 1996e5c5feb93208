"""DDS reference numbers travel with the coffee (trace/dds_references.py): recorded on two
green lots of a cooperative, they reach the blend of them and, through a shipment, the
exporter's lot in another organisation; they become that lot's groupedDeclarations (its
statement valid against the EU's XSDs) and regulatory information in its EPCIS export
(valid against GS1's schema); statements filed through coffeetrace count once AVAILABLE;
bad numbers are refused by name, and an edit, insert or delete with psql is named by
verification."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.trace import (
    cooperatives,
    dds,
    dds_references,
    epcis,
    lots,
    organisations,
    partners,
    processing,
    registry,
    shipments,
)
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain, verify_lot
from tests.conftest import SHARED
from tests.factories import make_world, square
from tests.trace.builders import T0, insert_harvest

DAY = timedelta(days=1)
EUDR = SHARED / "reference" / "eudr"
NS = {"dds": dds.DDS_NS, "c": dds.COMMON_NS}
IMPORT_DE = dds.Filing(
    activity="IMPORT",
    operator=dds.EconomicOperator(identifiers=(("eori", "DE123456789012345"),)),
    country_of_activity="DE",
)
REF1, VER1 = "25VNA0000000A1", "KYBFRB6R"
REF2, VER2 = "25VNA0000000B2", "QWERTY12"


def _org(conn: psycopg.Connection, keys: KeyRing, code: str, role: str) -> Any:
    row = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys)
    organisations.set_roles(conn, code, [role])
    return row["id"]


@pytest.fixture
def flow(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """Two green lots GR-1 and GR-2 of a cooperative (two farms), blended into BL-1, which
    is shipped to its partner, an exporter, who accepts it as EX-1."""
    world = make_world(conn, keys=keys, trees=2, code="ea-tu")
    coop = world.coop["id"]
    farm2 = registry.create_farm(conn, coop, "F-OTHER", keys=keys, display_name="Other farm")
    plot2 = registry.create_plot(
        conn, coop, farm2["id"], "P-2", square(108.1, 12.7), 1.0, keys=keys
    )
    tree3 = registry.create_tree(
        conn, coop, plot2["id"], "T-3", keys=keys, lon=108.1005, lat=12.7005
    )
    cherry = [
        lots.build_cherry_lot(
            conn,
            coop,
            code=f"CH-{i}",
            harvest_ids=[insert_harvest(conn, tree, 20, time=T0 + timedelta(minutes=i))],
            keys=keys,
        )
        for i, tree in enumerate((world.trees[0], tree3), start=1)
    ]
    greens = [
        processing.record_transformation(
            conn,
            coop,
            step="cherry_to_green",
            occurred_at=T0 + 2 * DAY,
            inputs=[(c["id"], 20)],
            outputs=[{"code": f"GR-{i}", "kg": 5, "kind": "green"}],
            keys=keys,
        )["outputs"][0]
        for i, c in enumerate(cherry, start=1)
    ]
    blend = processing.record_transformation(
        conn,
        coop,
        step="blending",
        occurred_at=T0 + 3 * DAY,
        inputs=[(g["id"], 5) for g in greens],
        outputs=[{"code": "BL-1", "kg": 10, "kind": "blend"}],
        keys=keys,
    )["outputs"][0]
    exporter = _org(conn, keys, "bmt-export", "exporter")
    proposal = partners.propose(conn, coop, str(exporter), keys=keys)
    partners.accept(conn, exporter, proposal["id"], keys=keys)
    sent = shipments.create(
        conn,
        coop,
        "bmt-export",
        departed_at=T0 + 4 * DAY,
        departure_place="Ea Tu cooperative warehouse",
        lines=[(blend["id"], 10)],
        keys=keys,
    )
    shipments.accept(
        conn,
        exporter,
        sent["id"],
        received_at=T0 + 5 * DAY,
        arrival_place="BMT Export dry mill",
        lines=[{"line": 1, "received_kg": 10, "code": "EX-1"}],
        keys=keys,
    )
    ex1 = conn.execute(
        "select id, code from lots where cooperative_id = %s and code = 'EX-1'", (exporter,)
    ).fetchone()
    assert ex1 is not None
    conn.commit()
    return {"coop": coop, "exporter": exporter, "greens": greens, "blend": blend, "ex1": ex1}


def _record(conn: psycopg.Connection, keys: KeyRing, org: Any, lot: Any, ref: str, ver: str,
            role: str = "filed") -> dict[str, Any]:  # fmt: skip
    return dds_references.record(
        conn,
        keys,
        org,
        lot["id"],
        reference_number=ref,
        verification_number=ver,
        role=role,
        recorded_by="test",
    )


def test_references_flow_through_a_blend_and_a_shipment_into_the_dds(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any]
) -> None:
    gr1, gr2 = flow["greens"]
    row = _record(conn, keys, flow["coop"], gr1, REF1.lower(), VER1.lower())
    assert row["reference_number"] == REF1 and row["verification_number"] == VER1
    _record(conn, keys, flow["coop"], gr2, REF2, VER2)
    own = dds_references.in_force(conn, gr1["id"], environment=None)
    assert [(r["reference_number"], r["own"]) for r in own] == [(REF1, True)]
    assert dds_references.to_group(own) == []  # a statement cannot group itself

    refs = dds_references.in_force(conn, flow["ex1"]["id"], environment=None)
    assert {r["reference_number"] for r in refs} == {REF1, REF2}
    assert {r["lot"]["code"] for r in refs} == {"GR-1", "GR-2"}
    assert {r["organisation"]["code"] for r in refs} == {"ea-tu"}
    assert not any(r["own"] for r in refs)
    via_blend = dds_references.in_force(conn, flow["blend"]["id"], environment=None)
    assert dds_references.to_group(via_blend) == [REF1, REF2]

    doc = dds.build_dds(conn, flow["ex1"]["id"], IMPORT_DE)
    statement = doc["statements"][0]["statement"]
    assert statement["groupedDeclarations"] == [REF1, REF2]
    xml = dds.to_xml(doc["statements"][0])
    if (EUDR / dds.SCHEMA_FILE).exists():
        dds.validate_xml(xml, EUDR)
    grouped = ET.fromstring(xml).findall(
        "dds:statement/dds:groupedDeclarations/c:groupedDeclaration", NS
    )
    assert [g.text for g in grouped] == [REF1, REF2]
    # the exporter's own received statement is grouped too; one it filed for EX-1 is not
    _record(conn, keys, flow["exporter"], flow["ex1"], "25DEX000000001", "ABCDE", role="received")
    _record(conn, keys, flow["exporter"], flow["ex1"], "25DEX000000002", "FGHIJ", role="filed")
    doc = dds.build_dds(conn, flow["ex1"]["id"], IMPORT_DE)
    assert sorted(doc["statements"][0]["statement"]["groupedDeclarations"]) == [
        "25DEX000000001",
        REF1,
        REF2,
    ]


def test_an_available_submission_counts_in_its_environment(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any]
) -> None:
    gr1 = flow["greens"][0]
    conn.execute(
        "insert into dds_submissions (cooperative_id, lot_id, environment, eu_uuid,"
        " operator_role, activity_type, statement_sha256, statement_bytes, status,"
        " reference_number, verification_number) values (%s, %s, 'acceptance',"
        " gen_random_uuid(), 'OPERATOR', 'EXPORT', repeat('a', 64), 100, %s, %s, %s)",
        (flow["coop"], gr1["id"], "SUBMITTED", "25VNS000000001", "SUBMIT01"),
    )
    assert dds_references.in_force(conn, flow["ex1"]["id"], environment="acceptance") == []
    conn.execute("update dds_submissions set status = 'AVAILABLE' where lot_id = %s", (gr1["id"],))
    (found,) = dds_references.in_force(conn, flow["ex1"]["id"], environment="acceptance")
    assert found["source"] == "submitted" and found["reference_number"] == "25VNS000000001"
    assert found["lot"]["code"] == "GR-1"
    assert dds_references.in_force(conn, flow["ex1"]["id"], environment="production") == []
    assert dds_references.in_force(conn, flow["ex1"]["id"], environment=None) == []


def test_the_epcis_export_carries_them_as_regulatory_information(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any], epcis_schema_path: Path
) -> None:
    gr1, gr2 = flow["greens"]
    _record(conn, keys, flow["coop"], gr1, REF1, VER1)
    _record(conn, keys, flow["coop"], gr2, REF2, VER2)
    public = epcis.export_epcis(conn, flow["ex1"]["id"], "https://trace.example")
    # the public export: nothing until the organisation shows its numbers, never a
    # verification number
    assert not [e for e in public["epcisBody"]["eventList"] if "gs1:regulatoryInformation" in e]
    dds_references.set_number_public(conn, flow["coop"], True)
    public = epcis.export_epcis(conn, flow["ex1"]["id"], "https://trace.example")
    shown = [e for e in public["epcisBody"]["eventList"] if "gs1:regulatoryInformation" in e]
    assert len(shown) == 2 and VER1 not in json.dumps(public) and REF1 in json.dumps(public)
    doc = epcis.export_epcis(conn, flow["ex1"]["id"], "https://trace.example", dds_numbers="all")
    validator = jsonschema.Draft7Validator(
        json.loads(epcis_schema_path.read_text()),
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )
    assert [e.message for e in validator.iter_errors(public)] == []
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    regulatory = [e for e in doc["epcisBody"]["eventList"] if "gs1:regulatoryInformation" in e]
    assert len(regulatory) == 2  # one event per lot the references were recorded on
    infos = [i for e in regulatory for i in e["gs1:regulatoryInformation"]]
    assert {i["gs1:regulatoryAct"] for i in infos} == {"EU 2023/1115"}
    ids = [i["gs1:regulatoryIdentifier"] for i in infos]
    assert {i["gs1:regulatoryIdentifierType"] for i in ids} == {
        "gs1:RegulatoryIdentifierType-DUE_DILIGENCE_STATEMENT"
    }
    assert {(i["ct:ddsReferenceNumber"], i["ct:ddsVerificationNumber"]) for i in ids} == {
        (REF1, VER1),
        (REF2, VER2),
    }
    # the control: the schema bites on a misspelt extension key
    regulatory[0]["not a uri"] = 1
    assert list(validator.iter_errors(doc))


@pytest.mark.parametrize(
    ("reference", "verification", "field"),
    [
        ("", "KYBFRB6R", "reference_number"),
        ("25VNA0000000A1X", "KYBFRB6R", "reference_number"),  # 15 characters
        ("25VN-0000", "KYBFRB6R", "reference_number"),
        ("25VN\x000000", "KYBFRB6R", "reference_number"),
        ("25VN\ud8000000", "KYBFRB6R", "reference_number"),
        (12345, "KYBFRB6R", "reference_number"),
        (REF1, "KYB", "verification_number"),
        (REF1, "K" * 36, "verification_number"),
        (REF1, None, "verification_number"),
    ],
)
def test_bad_numbers_are_refused_by_name(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any], reference: Any,
    verification: Any, field: str,
) -> None:  # fmt: skip
    with pytest.raises(ValidationFailed) as exc:
        dds_references.record(
            conn,
            keys,
            flow["coop"],
            flow["greens"][0]["id"],
            reference_number=reference,
            verification_number=verification,
            recorded_by="test",
        )
    assert exc.value.details["field"] == field


def test_another_organisations_lot_and_a_second_recording(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any]
) -> None:
    with pytest.raises(NotFound):
        _record(conn, keys, flow["exporter"], flow["greens"][0], REF1, VER1)
    _record(conn, keys, flow["coop"], flow["greens"][0], REF1, VER1)
    with pytest.raises(Conflict):
        _record(conn, keys, flow["coop"], flow["greens"][0], REF1, "OTHER123")
    with pytest.raises(ValidationFailed):
        _record(conn, keys, flow["coop"], flow["greens"][0], REF2, VER2, role="bought")


def test_psql_edits_of_references_are_named(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any]
) -> None:
    gr1 = flow["greens"][0]
    row = _record(conn, keys, flow["coop"], gr1, REF1, VER1)
    conn.commit()
    assert verify_lot(conn, flow["ex1"]["id"], keys=keys)["ok"]
    assert dds_references.check_chain(conn, flow["coop"]) == []

    conn.execute(
        "update lot_dds_references set reference_number = '25VNFORGED0001' where id = %s",
        (row["id"],),
    )
    problems = verify_lot(conn, flow["ex1"]["id"], keys=keys)["problems"]
    (edited,) = [p for p in problems if p["kind"] == "dds_reference"]
    assert edited["problem"] == "dds_reference_edited" and edited["fields"] == ["reference_number"]
    assert edited["seq"] == row["event_seq"]
    conn.rollback()

    # a row inserted behind the application's back names no event
    conn.execute(
        "insert into lot_dds_references (cooperative_id, lot_id, reference_number,"
        " verification_number, role, recorded_by) values (%s, %s, 'FORGED', 'FORGED1',"
        " 'filed', 'psql')",
        (flow["coop"], gr1["id"]),
    )
    problems = verify_lot(conn, flow["ex1"]["id"], keys=keys)["problems"]
    assert [p["problem"] for p in problems if p["kind"] == "dds_reference"] == [
        "dds_reference_unrecorded"
    ]
    conn.rollback()

    # a row deleted: the chain audit names the event that recorded it
    conn.execute("delete from lot_dds_references where id = %s", (row["id"],))
    result = verify_chain(conn, flow["coop"], keys=keys)
    missing = [p for p in result["problems"] if p["problem"] == "dds_reference_missing"]
    assert len(missing) == 1 and missing[0]["seq"] == row["event_seq"]
    conn.rollback()

    # the event's payload edited: its hash no longer holds
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{reference,facts,role}',"
        " '\"received\"') where seq = %s",
        (row["event_seq"],),
    )
    problems = verify_lot(conn, flow["ex1"]["id"], keys=keys)["problems"]
    assert "hash_mismatch" in {p["problem"] for p in problems}
    conn.rollback()


def test_the_cli_records_and_lists(
    conn: psycopg.Connection, keys: KeyRing, flow: dict[str, Any], db_url: str, tmp_path: Path
) -> None:
    env = {"COFFEETRACE_DATABASE_URL": db_url, "COFFEETRACE_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    args = ["dds", "record", "GR-1", "--coop", "ea-tu", "--reference", REF1]
    done = runner.invoke(cli.app, [*args, "--verification", VER1, "--role", "filed"], env=env)
    assert done.exit_code == 0, done.output
    assert f"DDS {REF1} (filed) recorded" in done.stderr
    bad = runner.invoke(cli.app, [*args[:-1], "25VN-1", "--verification", VER1], env=env)
    assert bad.exit_code != 0 and "reference_number" in bad.output
    listed = runner.invoke(cli.app, ["dds", "references", "EX-1", "--coop", "bmt-export"], env=env)
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert doc["grouped"] == [REF1] and doc["references"][0]["lot"]["code"] == "GR-1"
    shown = runner.invoke(cli.app, ["dds", "number-public", "--coop", "ea-tu", "--show"], env=env)
    assert shown.exit_code == 0, shown.output
    conn.rollback()  # see what the CLI committed
    assert dds_references.number_public(conn, flow["coop"])
    assert verify_chain(conn, flow["coop"], keys=keys)["ok"]
