"""`coffeetrace export dds` against a real database: XML checked against the EU's XSDs,
JSON of the same content, the filing's options, and refusals as one clear line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.trace import dds
from coffeetrace.trace.keys import KeyRing
from tests.conftest import SHARED
from tests.trace.chain import build_chain
from tests.trace.eudr_evidence_helpers import screen_all_plots

EUDR = SHARED / "reference" / "eudr"
NS = {"dds": dds.DDS_NS, "c": dds.COMMON_NS}


@pytest.fixture
def runner_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
    }


def test_export_dds_xml_and_json(
    conn: psycopg.Connection, keys: KeyRing, runner_env: dict[str, str], tmp_path: Path
) -> None:
    if not (EUDR / dds.SCHEMA_FILE).exists():
        pytest.skip(f"the EU's DDS schemas are not at {EUDR} (shared/ is not beside the checkout)")
    screen_all_plots(conn, keys, build_chain(conn, keys=keys)["world"].coop["id"])
    runner = CliRunner()
    args = ["export", "dds", "PK-1", "--country", "DE", "--operator-eori", "DE123456789012345"]
    xml = runner.invoke(cli.app, [*args, "--schemas", str(EUDR)], env=runner_env)
    assert xml.exit_code == 0, xml.output
    assert "valid against the EU schemas" in xml.stderr
    root = ET.fromstring(xml.stdout)
    assert root.findtext("dds:statement/dds:commodities/dds:hsHeading", namespaces=NS) == "090121"
    out = tmp_path / "pk-1.json"
    as_json = runner.invoke(cli.app, [*args, "--format", "json", "-o", str(out)], env=runner_env)
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert dds.to_xml(doc["statements"][0]).decode().rstrip("\n") == xml.stdout.rstrip("\n")
    represented = runner.invoke(
        cli.app,
        [
            *args,
            "--represented-name",
            "Kaffee Import GmbH",
            "--represented-eori",
            "DE987654321",
            "--represented-id",
            "vat:DE123456789",
            "--activity",
            "EXPORT",
            "--confidential",
            "--schemas",
            str(EUDR),
        ],
        env=runner_env,
    )
    assert represented.exit_code == 0, represented.output
    root = ET.fromstring(represented.stdout)
    assert root.findtext("dds:operatorRole", namespaces=NS) == "REPRESENTATIVE_OPERATOR"
    assert root.findtext("dds:statement/dds:activityType", namespaces=NS) == "EXPORT"


def test_export_dds_refusals(
    conn: psycopg.Connection, keys: KeyRing, runner_env: dict[str, str]
) -> None:
    screen_all_plots(conn, keys, build_chain(conn, keys=keys)["world"].coop["id"])
    runner = CliRunner()
    bad = runner.invoke(cli.app, ["export", "dds", "PK-1", "--activity", "TRADE"], env=runner_env)
    assert bad.exit_code == 2 and "activity must be one of" in bad.stderr
    ids = runner.invoke(
        cli.app, ["export", "dds", "PK-1", "--represented-id", "DE1"], env=runner_env
    )
    assert ids.exit_code == 2 and "TYPE:VALUE" in ids.stderr
    part = runner.invoke(cli.app, ["export", "dds", "PK-1", "--part", "2"], env=runner_env)
    assert part.exit_code == 2 and "no part 2" in part.stderr
    warned = runner.invoke(cli.app, ["export", "dds", "PK-1"], env=runner_env)
    assert warned.exit_code == 0
    assert "warning: IMPORT needs the operator's EORI" in warned.stderr
