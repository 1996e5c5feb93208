"""`coffeetrace dds submit LOT` without --file: the statement built from the lot (as
`export dds` builds it), behind the EUDR readiness gate, filed with the local EU test
server that validates it against the EU's schemas."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lots import build_cherry_lot
from tests.euis.conftest import AUTH_KEY, USERNAME
from tests.euis.soap_server import EuisTestServer
from tests.factories import make_world
from tests.trace.builders import harvest_trees
from tests.trace.eudr_evidence_helpers import screen_all_plots

ARGS = ["--country", "DE", "--operator-eori", "DE123456789012345"]


@pytest.fixture
def world(conn: psycopg.Connection, keys: KeyRing) -> object:
    world = make_world(conn, keys=keys, trees=2)
    harvest_trees(conn, world.trees)
    build_cherry_lot(conn, world.coop["id"], code="GR-1", plot_ids=[world.plot["id"]], keys=keys)
    conn.commit()
    return world


@pytest.fixture
def env(db_url: str, tmp_path: Path, soap_server: EuisTestServer) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
        "COFFEETRACE_EUDR_BASE_URL": soap_server.base_url,
        "COFFEETRACE_EUDR_USERNAME": USERNAME,
        "COFFEETRACE_EUDR_AUTH_KEY": AUTH_KEY,
    }


def _rows(conn: psycopg.Connection) -> list[dict]:
    conn.rollback()  # the CLI committed in its own connection
    return conn.execute("select * from dds_submissions order by submitted_at").fetchall()


def _overrides(conn: psycopg.Connection) -> int:
    conn.rollback()
    found = conn.execute(
        "select count(*) as n from trace_events where kind = 'eudr_readiness_override'"
    ).fetchone()
    assert found is not None
    return int(found["n"])


def test_submit_builds_the_statement_once_ready(
    conn: psycopg.Connection, keys: KeyRing, world: object, env: dict[str, str]
) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli.app, ["dds", "submit", "GR-1", *ARGS], env=env)
    assert refused.exit_code == 2
    assert "blocker: not_screened: plot P-1" in refused.stderr
    assert _rows(conn) == []
    screen_all_plots(conn, keys, world.coop["id"])  # type: ignore[attr-defined]
    filed = runner.invoke(cli.app, ["dds", "submit", "GR-1", *ARGS], env=env)
    assert filed.exit_code == 0, filed.output
    (row,) = _rows(conn)
    assert (row["status"], row["internal_reference"], row["activity_type"]) == (
        "SUBMITTED",
        "GR-1",
        "IMPORT",
    )
    assert _overrides(conn) == 0


def test_submit_forced_records_the_override(
    conn: psycopg.Connection, world: object, env: dict[str, str]
) -> None:
    runner = CliRunner()
    filed = runner.invoke(cli.app, ["dds", "submit", "GR-1", *ARGS, "--force"], env=env)
    assert filed.exit_code == 0, filed.output
    assert "forced past 1 readiness blocker(s)" in filed.stderr
    assert len(_rows(conn)) == 1
    assert _overrides(conn) == 1
