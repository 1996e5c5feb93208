"""EUDR evidence and readiness against the real database: each blocker appears and clears,
the screening import refuses bad rows by row and field, capacity excess, the tree
evidence, `export dds` refused then forced (the override in the chain), tenancy, and a
screening row edited with psql named by verify_screenings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from coffeetrace import cli
from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import eudr_evidence, eudr_readiness, registry, verification
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.chain import build_chain
from tests.trace.eudr_evidence_helpers import screen_all_plots

MAX = 20_000.0
LIMITS = {"max_rows": 100, "max_bytes": 64 * 1024}


def ready(conn: psycopg.Connection, chain: dict[str, Any], max_kg: float = MAX) -> dict[str, Any]:
    coop = chain["world"].coop["id"]
    return eudr_readiness.readiness(conn, coop, chain["packed"]["id"], max_cherry_kg_per_ha=max_kg)


def codes(found: dict[str, Any]) -> dict[str, list[str]]:
    return {p["code"]: [b["code"] for b in p["blockers"]] for p in found["plots"]}


def entry(conn: psycopg.Connection, keys: KeyRing, chain: dict[str, Any], plot: Any, **kw: Any):
    item = {"risk": "low", "source": "Whisp", "analysis_date": "2026-02-01", "note": "by hand"}
    return eudr_evidence.record_screening(
        conn, keys, chain["world"].coop["id"], plot["id"], {**item, **kw}, recorded_by="test"
    )


def test_screening_blockers_appear_and_clear(conn: psycopg.Connection, keys: KeyRing) -> None:
    chain = build_chain(conn, keys=keys)
    first = ready(conn, chain)
    assert not first["ready"]
    assert codes(first) == {"P-1": ["not_screened"], "P-BIG": ["not_screened"]}
    p1 = next(p for p in first["plots"] if p["code"] == "P-1")
    # trees: make_world plants in 2012, so all of P-1's trees were growing at the cut-off
    assert p1["present"]["trees"]["share_planted_by_cutoff"] == 1.0
    assert p1["present"]["trees"]["earliest_planted_on"] == "2012-06-01"
    assert p1["present"]["geolocation"]["export_as"] == "Point"
    screen_all_plots(conn, keys, chain["world"].coop["id"])
    assert ready(conn, chain)["ready"]

    # high risk without a mitigation note blocks; a newer result with one clears it
    entry(conn, keys, chain, chain["plot2"], risk="High risk", analysis_date="2026-03-01")
    found = ready(conn, chain)
    assert codes(found)["P-BIG"] == ["high_risk_unmitigated"]
    big = next(p for p in found["plots"] if p["code"] == "P-BIG")
    assert big["present"]["screening"]["source_category"] == "High risk"
    entry(
        conn,
        keys,
        chain,
        chain["plot2"],
        risk="high",
        analysis_date="2026-03-02",
        mitigation_note="field visit: coffee since 2015, no forest loss seen",
    )
    assert ready(conn, chain)["ready"]


def test_planted_after_cutoff_needs_land_use_evidence(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    chain = build_chain(conn, keys=keys)
    coop = chain["world"].coop["id"]
    screen_all_plots(conn, keys, coop)
    registry.create_tree(
        conn, coop, chain["world"].plot["id"], "T-YOUNG", keys=keys, planted_on=date(2022, 5, 1)
    )
    found = ready(conn, chain)
    assert codes(found)["P-1"] == ["planted_after_cutoff"]
    trees = next(p for p in found["plots"] if p["code"] == "P-1")["present"]["trees"]
    assert trees["planted_after_cutoff"] == 1 and trees["share_planted_by_cutoff"] == 0.75
    entry(
        conn,
        keys,
        chain,
        chain["world"].plot,
        analysis_date="2026-03-01",
        land_use_note="cadastral map 2018: the plot was already cropland",
    )
    assert ready(conn, chain)["ready"]


def test_geolocation_blockers(conn: psycopg.Connection, keys: KeyRing) -> None:
    chain = build_chain(conn, keys=keys)
    coop = chain["world"].coop["id"]
    screen_all_plots(conn, keys, coop)
    plot2 = chain["plot2"]["id"]
    # a 6-ha plot stored as a point (registered before the EU's rules were checked)
    conn.execute(
        "update plots set geometry = %s where id = %s",
        (Jsonb({"type": "Point", "coordinates": [108.11, 12.71]}), plot2),
    )
    assert codes(ready(conn, chain))["P-BIG"] == ["polygon_missing"]
    conn.execute(
        "update plots set geometry = %s where id = %s",
        (Jsonb({"type": "GeometryCollection", "geometries": []}), plot2),
    )
    assert codes(ready(conn, chain))["P-BIG"] == ["not_geolocated"]
    conn.execute(
        "update plots set geometry = %s where id = %s", (Jsonb(chain["plot2"]["geometry"]), plot2)
    )
    assert ready(conn, chain)["ready"]


def test_volume_above_capacity(conn: psycopg.Connection, keys: KeyRing) -> None:
    chain = build_chain(conn, keys=keys)
    screen_all_plots(conn, keys, chain["world"].coop["id"])
    # P-1 (1 ha) gave 20 kg in the lot; P-BIG (6 ha) 30 kg
    found = ready(conn, chain, max_kg=10.0)
    assert codes(found) == {"P-1": ["volume_above_capacity"], "P-BIG": []}
    p1 = next(p for p in found["plots"] if p["code"] == "P-1")
    assert p1["present"]["capacity"]["max_cherry_kg_per_season"] == 10.0
    assert p1["present"]["capacity"]["excess"][0]["cherry_kg"] == 20.0
    assert "20 kg of cherry" in found["blockers"][0]["message"]
    assert ready(conn, chain, max_kg=20.0)["ready"]  # at capacity is not above it


def test_import_refuses_bad_rows_naming_them(conn: psycopg.Connection, keys: KeyRing) -> None:
    chain = build_chain(conn, keys=keys)
    coop = chain["world"].coop["id"]
    other = make_world(conn, keys=keys, code="other-coop", trees=1)
    plot2_id = str(chain["plot2"]["id"])
    csv = (
        "plot,risk,source,analysis_id,analysis_date\n"
        "P-1,low,Whisp,w-1,2026-01-10\n"
        f"{plot2_id},medium,Global Forest Watch,gfw-9,2026-01-11\n"
        "P-NONE,low,Whisp,w-2,2026-01-10\n"
        "P-1,purple,Whisp,w-3,2026-01-10\n"
        "P-1,low,,w-4,2026-13-01\n"
        f"{other.plot['id']},low,Whisp,w-5,2026-01-10\n"
    ).encode()
    with pytest.raises(ValidationFailed) as refused:
        eudr_evidence.import_screenings(conn, keys, coop, csv, "csv", recorded_by="t", **LIMITS)
    named = [(e["row"], e["field"]) for e in refused.value.details["errors"]]
    assert named == [
        (3, "plot"),
        (4, "risk"),
        (5, "source"),
        (5, "analysis_date"),
        (6, "plot"),  # another cooperative's plot is not known here
    ]
    assert conn.execute("select count(*) as n from plot_screenings").fetchone()["n"] == 0
    good = b"\n".join(csv.split(b"\n")[:3])
    rows = eudr_evidence.import_screenings(conn, keys, coop, good, "csv", recorded_by="t", **LIMITS)
    assert [(r["risk"], r["source_category"]) for r in rows] == [
        ("low", None),
        ("standard", "medium"),
    ]
    # limits: rows and bytes
    many = json.dumps([{"plot": "P-1"}] * 101).encode()
    with pytest.raises(ValidationFailed, match="at most 100"):
        eudr_evidence.import_screenings(conn, keys, coop, many, "json", recorded_by="t", **LIMITS)
    with pytest.raises(ValidationFailed, match="bytes"):
        eudr_evidence.import_screenings(
            conn, keys, coop, b" " * 70_000, "json", recorded_by="t", **LIMITS
        )
    with pytest.raises(ValidationFailed, match="note is required"):
        eudr_evidence.record_screening(
            conn, keys, coop, chain["plot2"]["id"],
            {"risk": "low", "source": "x", "analysis_date": "2026-01-01"}, recorded_by="t",
        )  # fmt: skip
    with pytest.raises(NotFound):
        entry(conn, keys, chain, other.plot)
    with pytest.raises(NotFound):
        eudr_evidence.plot_screenings(conn, coop, other.plot["id"])


def test_require_ready_refuses_then_force_is_in_the_chain(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    chain = build_chain(conn, keys=keys)
    coop, lot = chain["world"].coop["id"], chain["packed"]["id"]
    with pytest.raises(RuleViolation) as refused:
        eudr_readiness.require_ready(conn, keys, coop, lot, max_cherry_kg_per_ha=MAX, by="t")
    assert refused.value.rule == "eudr_not_ready"
    assert {b["code"] for b in refused.value.details["blockers"]} == {"not_screened"}
    forced = eudr_readiness.require_ready(
        conn, keys, coop, lot, max_cherry_kg_per_ha=MAX, force=True, by="t"
    )
    event = conn.execute(
        "select kind, lot_ids, payload from trace_events where seq = %s",
        (forced["override_event_seq"],),
    ).fetchone()
    assert event["kind"] == "eudr_readiness_override" and event["lot_ids"] == [lot]
    assert [b["plot"] for b in event["payload"]["blockers"]] == ["P-1", "P-BIG"]


@pytest.fixture
def runner_env(db_url: str, tmp_path: Path, keys: KeyRing) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),
    }


def test_export_dds_refused_then_forced(
    conn: psycopg.Connection, keys: KeyRing, runner_env: dict[str, str]
) -> None:
    build_chain(conn, keys=keys)
    runner = CliRunner()
    args = ["export", "dds", "PK-1", "--country", "DE", "--operator-eori", "DE123456789012345"]
    refused = runner.invoke(cli.app, args, env=runner_env)
    assert refused.exit_code != 0
    assert "blocker: not_screened: plot P-1 has no risk screening result" in refused.stderr
    assert "not ready for a due diligence statement" in refused.stderr
    forced = runner.invoke(cli.app, [*args, "--force"], env=runner_env)
    assert forced.exit_code == 0, forced.output
    assert "forced past 2 readiness blocker(s)" in forced.stderr
    assert forced.stdout.startswith("<?xml") or "SubmitDdsRequest" in forced.stdout
    n = conn.execute(
        "select count(*) as n from trace_events where kind = 'eudr_readiness_override'"
    ).fetchone()["n"]
    assert n == 1


def test_screening_row_edited_with_psql_is_named(conn: psycopg.Connection, keys: KeyRing) -> None:
    chain = build_chain(conn, keys=keys)
    coop = chain["world"].coop["id"]
    rows = screen_all_plots(conn, keys, coop)
    assert eudr_evidence.verify_screenings(conn, coop) == []
    conn.execute("update plot_screenings set risk = 'high' where id = %s", (rows[0]["id"],))
    (edited,) = eudr_evidence.verify_screenings(conn, coop)
    assert edited["problem"] == "screening_edited" and edited["fields"] == ["risk"]
    assert '"low" became "high"' in edited["detail"]
    conn.execute("delete from plot_screenings where id = %s", (rows[1]["id"],))
    conn.execute(
        "insert into plot_screenings (cooperative_id, plot_id, risk, source, analysis_date,"
        " recorded_by) values (%s, %s, 'low', 'forged', '2026-01-01', 'psql')",
        (coop, chain["plot2"]["id"]),
    )
    problems = {p["problem"] for p in eudr_evidence.verify_screenings(conn, coop)}
    assert problems == {"screening_edited", "screening_missing", "screening_unrecorded"}
    # and the organisation's chain audit (`coffeetrace verify --coop`) names them too
    audit = verification.verify_chain(conn, coop, keys=keys)
    assert not audit["ok"]
    assert problems <= {p["problem"] for p in audit["problems"]}
