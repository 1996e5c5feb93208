"""`coffeetrace bench eudr` runs end to end at toy size (its timings are not asserted)."""

from __future__ import annotations

import json

import pytest

from coffeetrace.settings import Settings
from coffeetrace_bench.eudr import run


def test_bench_eudr_small(pg_server, capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    summary = run(
        pg_server.admin_url,
        max_cherry_kg_per_ha=Settings().eudr_max_cherry_kg_per_ha,
        trees=2000,
        repeat=1,
        keep=False,
        say=said.append,
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(summary, default=str))
    assert summary["plots"] == 200 and summary["farms"] == 100
    # every plot of the lot is in its statement and its readiness
    assert summary["dds_plots"] == 200 and summary["readiness_plots"] == 200
    assert summary["dds_statements"] == 1 and summary["dds_producers"] >= 1
    assert summary["dds_ceiling_rows"] > 2000 and summary["readiness_ceiling_rows"] > 2000
    # nothing screened in the bench's store: every plot is blocked as not screened
    assert summary["readiness_blockers"] >= 200
    assert summary["dds_ratio"] > 0 and summary["readiness_ratio"] > 0
    assert any("ratio" in line for line in said)
