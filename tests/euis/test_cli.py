"""`coffeetrace dds submit|status|amend|withdraw|verify` against a real database and the
local EU test server; what is stored per statement (dds_submissions)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest
from lxml import etree
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lots import build_cherry_lot
from tests.euis.conftest import AUTH_KEY, USERNAME
from tests.euis.soap_server import COMMON_NS, DDS_NS, EuisTestServer
from tests.factories import make_world
from tests.trace.builders import harvest_trees


@pytest.fixture
def lot_code(conn: psycopg.Connection, keys: KeyRing) -> str:
    world = make_world(conn, keys=keys, trees=2)
    harvest_trees(conn, world.trees)
    build_cherry_lot(conn, world.coop["id"], code="GR-1", plot_ids=[world.plot["id"]], keys=keys)
    conn.commit()
    return "GR-1"


@pytest.fixture
def env(db_url: str, tmp_path: Path, soap_server: EuisTestServer) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
        "COFFEETRACE_EUDR_BASE_URL": soap_server.base_url,
        "COFFEETRACE_EUDR_USERNAME": USERNAME,
        "COFFEETRACE_EUDR_AUTH_KEY": AUTH_KEY,
    }


@pytest.fixture
def statement_file(tmp_path: Path, example_xml: bytes) -> Path:
    path = tmp_path / "GR-1.dds.xml"
    path.write_bytes(example_xml)
    return path


def _rows(conn: psycopg.Connection) -> list[dict]:
    conn.rollback()  # a fresh snapshot: the CLI committed in its own connection
    return conn.execute("select * from dds_submissions order by submitted_at").fetchall()


def test_submit_status_verify_amend_withdraw(
    conn: psycopg.Connection,
    lot_code: str,
    env: dict[str, str],
    statement_file: Path,
    soap_server: EuisTestServer,
) -> None:
    runner = CliRunner()
    app = cli.app
    submitted = runner.invoke(
        app, ["dds", "submit", lot_code, "--file", str(statement_file)], env=env
    )
    assert submitted.exit_code == 0, submitted.output
    (row,) = _rows(conn)
    assert (row["status"], row["environment"], row["internal_reference"]) == (
        "SUBMITTED",
        "acceptance",
        "CT-2026-DL-0001",
    )
    assert (row["operator_role"], row["activity_type"]) == ("OPERATOR", "IMPORT")
    assert str(row["eu_uuid"]) in submitted.stdout
    assert row["statement_bytes"] == statement_file.stat().st_size

    again = runner.invoke(app, ["dds", "submit", lot_code, "--file", str(statement_file)], env=env)
    assert again.exit_code == 2 and "already has this very statement open" in again.output
    assert len(soap_server.filed) == 1

    first = runner.invoke(app, ["dds", "status", lot_code], env=env)
    assert first.exit_code == 0, first.output
    assert "SUBMITTED" in first.stdout and _rows(conn)[0]["status_checked_at"] is not None
    second = runner.invoke(app, ["dds", "status", lot_code], env=env)
    assert second.exit_code == 0, second.output
    (row,) = _rows(conn)
    assert row["status"] == "AVAILABLE"
    assert row["reference_number"] and row["verification_number"]
    assert f"{row['reference_number']} / {row['verification_number']}" in second.stdout

    by_reference = runner.invoke(app, ["dds", "status", "--reference", "CT-2026-DL-0001"], env=env)
    assert by_reference.exit_code == 0, by_reference.output
    assert row["reference_number"] in by_reference.stdout
    assert "not filed through coffeetrace" not in by_reference.stdout

    usable = runner.invoke(
        app, ["dds", "verify", row["reference_number"], row["verification_number"]], env=env
    )
    assert usable.exit_code == 0 and "EXISTING_USABLE" in usable.stdout

    root = etree.fromstring(statement_file.read_bytes())
    weight = root.find(f".//{{{COMMON_NS}}}netWeight")
    assert weight is not None
    weight.text = "19000"
    amended_file = statement_file.with_name("GR-1.amended.xml")
    amended_file.write_bytes(etree.tostring(root))
    amended = runner.invoke(app, ["dds", "amend", lot_code, "--file", str(amended_file)], env=env)
    assert amended.exit_code == 0, amended.output
    (row,) = _rows(conn)
    assert row["amended_at"] is not None and row["statement_bytes"] == len(etree.tostring(root))

    withdrawn = runner.invoke(app, ["dds", "withdraw", lot_code], env=env)
    assert withdrawn.exit_code == 0, withdrawn.output
    (row,) = _rows(conn)
    assert (row["status"], row["withdrawn_at"] is not None) == ("WITHDRAWN", True)
    gone = runner.invoke(
        app, ["dds", "verify", row["reference_number"], row["verification_number"]], env=env
    )
    assert gone.exit_code == 1 and "EXISTING_NON_USABLE" in gone.stdout
    local = runner.invoke(app, ["dds", "status", lot_code, "--local"], env=env)
    assert "WITHDRAWN" in local.stdout
    assert soap_server.auth_failures == []


def test_a_refused_submission_stores_nothing_and_names_the_eu_code(
    conn: psycopg.Connection,
    lot_code: str,
    env: dict[str, str],
    statement_file: Path,
) -> None:
    root = etree.fromstring(statement_file.read_bytes())
    # an IMPORT without its net weight (units instead): the EU's business rules refuse it
    weight = root.find(f".//{{{COMMON_NS}}}netWeight")
    assert weight is not None
    weight.tag = f"{{{COMMON_NS}}}supplementaryUnit"
    etree.SubElement(weight.getparent(), f"{{{COMMON_NS}}}supplementaryUnitQualifier").text = "NAR"
    statement_file.write_bytes(etree.tostring(root))
    result = CliRunner().invoke(
        cli.app, ["dds", "submit", lot_code, "--file", str(statement_file)], env=env
    )
    assert result.exit_code == 2
    assert "EUDR_COMMODITIES_DESCRIPTOR_NET_MASS_EMPTY" in result.output
    assert _rows(conn) == []


def test_missing_credentials_name_the_settings(
    lot_code: str, env: dict[str, str], statement_file: Path
) -> None:
    without = {**env, "COFFEETRACE_EUDR_AUTH_KEY": ""}
    result = CliRunner().invoke(
        cli.app, ["dds", "submit", lot_code, "--file", str(statement_file)], env=without
    )
    assert result.exit_code == 2 and "COFFEETRACE_EUDR_AUTH_KEY" in result.output


def test_a_rejected_statement_is_stored_with_its_reason(
    conn: psycopg.Connection, lot_code: str, env: dict[str, str], statement_file: Path
) -> None:
    root = etree.fromstring(statement_file.read_bytes())
    geometry = root.find(f".//{{{DDS_NS}}}geometryGeojson")
    assert geometry is not None
    geometry.text = base64.b64encode(
        json.dumps(
            {"type": "LineString", "coordinates": [[108.04, 12.66], [108.05, 12.67]]}
        ).encode()
    ).decode()
    statement_file.write_bytes(etree.tostring(root))
    runner = CliRunner()
    args = ["dds", "submit", lot_code, "--file", str(statement_file)]
    assert runner.invoke(cli.app, args, env=env).exit_code == 0
    for _ in range(2):
        result = runner.invoke(cli.app, ["dds", "status", lot_code], env=env)
        assert result.exit_code == 0, result.output
    (row,) = _rows(conn)
    assert row["status"] == "REJECTED" and row["reference_number"] is None
    assert "EUDR_COMMODITIES_PRODUCER_GEO_INVALID" in row["rejection_reason"]
    assert "rejected: EUDR_COMMODITIES_PRODUCER_GEO_INVALID" in result.stdout
    # settled: not asked again
    asked = len(runner.invoke(cli.app, ["dds", "status", lot_code], env=env).stdout)
    assert asked and _rows(conn)[0]["status_checked_at"] == row["status_checked_at"]
