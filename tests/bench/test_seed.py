"""`coffeetrace bench seed` runs end to end on a small size (its timing is not asserted)."""

from __future__ import annotations

import json

import pytest

from coffeetrace_bench.seed import bench_seed


def test_bench_seed_small(pg_server, capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    result = bench_seed(pg_server.admin_url, trees=3_000, seed=4, say=lines.append, progress=False)
    assert result["trees"] == result["stored"] == 3_000
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == result
    for key in ("seed_s", "raw_copy_shaped_s", "raw_copy_bare_s", "ratio", "ratio_vs_bare"):
        assert final[key] > 0, key
    assert lines and "ratio" in lines[-1]
