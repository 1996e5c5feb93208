"""`coffeetrace bench page` runs end to end on a small size with the built-in load
generator: the store is seeded, the ceiling, warm, cold and storm figures are measured with
one worker and two, without errors (timings are not asserted)."""

from __future__ import annotations

import json

import pytest

from coffeetrace.settings import Settings
from coffeetrace_bench.page import run_page_bench

pytestmark = pytest.mark.slow


def test_bench_page_small(
    pg_server, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    on_server = settings.model_copy(update={"database_url": pg_server.admin_url})
    result = run_page_bench(
        on_server,
        trees=2_000,
        lot_trees=100,
        duration_s=1,
        connections=4,
        keep=False,
        say=lines.append,
        storm_lots=30,
        workers=2,
        loadgen="builtin",
    )
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == result
    assert (final["trees"], final["lot_trees"], final["loadgen"]) == (2_000, 100, "builtin")
    assert final["errors"] == 0 and "error" not in final
    assert 0 < final["page_gzip_bytes"] < final["page_bytes"]
    for figures in (final, final["workers_2"]):
        assert figures["errors"] == 0
        for key in (
            "ceiling_rps",
            "warm_rps",
            "warm_dl_rps",
            "cold_ceiling_rps",
            "cold_rps",
            "storm_rps",
            "warm_ratio",
            "cold_ratio",
            "storm_ratio",
        ):
            assert figures[key] > 0, key
        assert set(figures["targets"]) == {"warm", "cold", "storm"}
    assert final["first_render_ms"] > 0
    assert any(line.startswith("page ") for line in lines)
