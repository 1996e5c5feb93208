"""`coffeetrace verify`, `export epcis` and `export eudr` against a real database."""

from __future__ import annotations

import json

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.trace.keys import KeyRing
from tests.trace.chain import build_chain


@pytest.fixture
def runner_env(db_url: str, tmp_path) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),  # where the `keys` fixture keeps them
        "COFFEETRACE_PUBLIC_BASE_URL": "https://trace.example.vn",
    }


def _app() -> typer.Typer:
    return cli.app


def test_verify_export_and_tamper(
    conn: psycopg.Connection, runner_env: dict[str, str], keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys)
    runner = CliRunner()
    app = _app()
    ok = runner.invoke(app, ["verify", "PK-1"], env=runner_env)
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    epcis = runner.invoke(app, ["export", "epcis", built["packed"]["public_id"]], env=runner_env)
    assert epcis.exit_code == 0, epcis.output
    doc = json.loads(epcis.stdout)
    assert doc["type"] == "EPCISDocument"
    eudr = runner.invoke(app, ["export", "eudr", "PK-1"], env=runner_env)
    assert json.loads(eudr.stdout)["type"] == "FeatureCollection"
    seq = conn.execute(
        "select seq from trace_events where kind = 'transformation' order by seq limit 1"
    ).fetchone()["seq"]  # type: ignore[index]
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{place}', '\"x\"') where seq = %s",
        (seq,),
    )
    conn.commit()
    bad = runner.invoke(app, ["verify", "PK-1"], env=runner_env)
    assert bad.exit_code == 1
    assert f"event seq {seq} (transformation)" in bad.output
    missing = runner.invoke(app, ["verify", "NOPE"], env=runner_env)
    assert missing.exit_code == 2 and "no lot" in missing.output
