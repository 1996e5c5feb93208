"""`coffeetrace bench page` runs end to end on a small size: the store is seeded, both
servers answer, every figure is measured without errors (its timings are not asserted)."""

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
    )
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == result
    assert (final["trees"], final["lot_trees"]) == (2_000, 100)
    assert final["errors"] == 0
    for key in (
        "page_bytes",
        "first_render_ms",
        "bare_rps",
        "warm_rps",
        "warm_dl_rps",
        "cold_rps",
        "warm_ratio",
        "cold_ratio",
    ):
        assert final[key] > 0, key
    assert any(line.startswith("page ") for line in lines)
