"""`coffeetrace bench ingest` runs end to end on a small size: every figure is measured and
everything published is committed (its timings are not asserted)."""

from __future__ import annotations

import json
import shutil

import pytest

from coffeetrace.settings import Settings
from coffeetrace_bench.ingest import run_bench

pytestmark = pytest.mark.slow


def test_bench_ingest_small(
    pg_server, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not on PATH: the benchmark starts its own")
    lines: list[str] = []
    result = run_bench(
        settings,
        messages=1_000,
        latency_seconds=0.5,
        database_url=pg_server.admin_url,
        say=lines.append,
        repeat=1,
        soak_seconds=2,
    )
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == result
    assert (final["messages"], final["messages_100"]) == (1_000, 100)
    for key in (
        "a_bare_msgs_s",
        "b_copy_readings_s",
        "c1_msgs_s",
        "c100_readings_s",
        "c1_over_a",
        "c100_over_b",
        "latency_p99_ms",
        "latency_500_p99_ms",
        "rss_ingest_max_mb",
    ):
        assert final[key] > 0, key
    # (c) with 100 readings a message stored all of them, as (b) wrote the same readings
    assert final["c100_readings_s"] == pytest.approx(final["c100_msgs_s"] * 100, rel=0.01)
    assert final["latency_committed"] == final["latency_published"]
    assert any(line.startswith("(c) ingest, 100 readings/msg") for line in lines)
    # the soak's RSS, of both processes together and of each
    for part in ("", "_paho", "_worker"):
        assert final[f"soak_rss{part}_first_mb"] > 0 and final[f"soak_rss{part}_last_mb"] > 0
