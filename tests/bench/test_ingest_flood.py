"""`coffeetrace bench ingest-flood` runs end to end on a small size: every figure is
measured, every good device's message is stored exactly once, and the flood's dead-letter
rows stay within the cap (its timings are not asserted)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from coffeetrace.settings import Settings
from coffeetrace_bench.ingest_flood import run_flood_bench

pytestmark = pytest.mark.slow

FIGURES = (
    "flood_baseline_p50_ms",
    "flood_baseline_p99_ms",
    "flood_p50_ms",
    "flood_p99_ms",
    "flood_p99_ratio",
    "flood_messages_sent",
    "flood_dead_letter_rows",
    "flood_dead_letter_cap",
    "flood_rate_limited_counted",
    "good_messages_published",
    "good_messages_committed",
)


def test_bench_ingest_flood_small(
    pg_server, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not on PATH: the benchmark starts its own")
    lines: list[str] = []
    # 10 good devices at 2 msgs/s beside one at 100 x 5 msgs/s, 2 rounds of 2 s + 2 s; a
    # cap of 30 dead-letter rows, well below the ~1,900 messages the flood has rate-limited
    capped = settings.model_copy(update={"ingest_dead_letters_per_device_hour": 30})
    result = run_flood_bench(
        capped,
        phase_seconds=2,
        rounds=2,
        database_url=pg_server.admin_url,
        say=lines.append,
        good_devices=10,
        good_rate=2,
        limit=5,
        burst=5,
        warmup_seconds=1,
    )
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == result
    for key in FIGURES:
        value = final[key]
        assert isinstance(value, int | float) and not math.isnan(value), key
    for key in (
        "flood_baseline_p99_ms",
        "flood_p99_ms",
        "flood_baseline_samples",
        "flood_samples",
        "ingest_cpu_baseline",
        "ingest_cpu_flood",
    ):
        assert final[key] > 0, key
    assert len(final["flood_p99_ms_rounds"]) == len(final["flood_baseline_p99_ms_rounds"]) == 2
    # every good message stored exactly once: the ledger key per message, the one reading
    assert final["good_messages_published"] == 10 * 2 * (1 + 2 * (2 + 2))
    assert final["good_messages_committed"] == final["good_messages_published"]
    assert final["good_devices_complete"] == 10
    assert (
        final["good_readings_stored"]
        == final["good_readings_distinct"]
        == final["good_messages_published"]
    )
    assert final["good_dead_letter_rows"] == 0
    # the flood: over its limit, counted, its rows capped
    assert final["flood_messages_sent"] == 2 * 100 * 5 * 2
    assert final["flood_rate_limited_counted"] > 0
    assert final["flood_dead_letter_rows"] <= final["flood_dead_letter_cap"]
    assert final["flood_dead_letter_cap"] in (30, 60)  # 30 an hour: 60 across an hour's end
    assert (
        final["flood_messages_stored"] + final["flood_rate_limited_counted"]
        == final["flood_messages_sent"]
    )
    assert any(line.startswith("under the flood") for line in lines)
