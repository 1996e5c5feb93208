"""`coffeetrace bench trace` runs end to end at toy size, with its cross-organisation case
(its timings are not asserted)."""

from __future__ import annotations

import json

import pytest

from coffeetrace_bench.trace import run


def test_bench_trace_small(pg_server, capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    summary = run(
        pg_server.admin_url,
        trees=3000,
        fed=2000,
        cross_fed=200,
        repeat=1,
        keep=False,
        say=said.append,
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(summary, default=str))
    assert summary["backward_trees"] == 2000 and summary["shares_sum"] == pytest.approx(1.0)
    assert summary["forward_tree_reaches_packed"] and summary["forward_farm_reaches_packed"]
    assert summary["store"]["trees"] == 3000
    # the benchmark's verification is of an untouched store: it must find nothing
    assert summary["verify_ok"] is True and summary["verify_problems"] == 0
    assert summary["verify_events"] > 0 and summary["verify_ceiling_rows"] > 2000
    assert any("ratio" in line for line in said)
    # the cross-organisation case: 4 organisations, 8 shipments, down to its 200 trees
    assert summary["cross_organisations"] == 4 and summary["cross_shipments"] == 8
    assert summary["cross_trees"] == 200 and summary["cross_shares_sum"] == pytest.approx(1.0)
    assert summary["cross_verify_ok"] is True and summary["cross_verify_problems"] == 0
    assert summary["cross_backward_rows"] > 200 and summary["cross_backward_ratio"] > 0
    assert any("cross-organisation backward" in line for line in said)
