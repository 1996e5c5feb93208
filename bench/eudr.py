"""`coffeetrace bench eudr`: a lot's DDS build and its EUDR readiness against reading the
same rows by id, in the same run.

Loads a store of `trees` trees (10 per plot, 2 plots per farm: 10,000 trees on 1,000 plots
of 500 farms by default, one harvest each) with `coffeetrace bench trace`'s loader, builds
one lot fed by all of them through its 6 levels of processing (bench/trace.py), then
times `dds.build_dds` (every statement, JSON-native, the GeoJSON of each producer encoded)
and `eudr_readiness.readiness` of that lot against the ceiling: fetching by id the lots,
steps, harvests, trees, plots (with farm, consent and cooperative), screenings and DDS
references they read. Target: ratio <= 3 (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from psycopg.rows import dict_row

from coffeetrace.db import scratch_database
from coffeetrace.sql import load_queries
from coffeetrace.trace import dds, eudr_readiness, genealogy, registry
from coffeetrace.trace.keys import KeyRing
from coffeetrace_bench.trace import CHERRY_LOT_TREES, _script, _timed, build_fed_lot, load_store

SQL = load_queries("coffeetrace_bench", "eudr.sql")
TRACE_SQL = load_queries("coffeetrace_bench", "trace.sql")
log = logging.getLogger(__name__)
Row = dict[str, Any]
TREES_PER_PLOT = 10
PLOTS_PER_FARM = 2
FILING = dds.Filing(
    activity="IMPORT",
    operator=dds.EconomicOperator(identifiers=(("eori", "DE123456789012345"),)),
    country_of_activity="DE",
)


def _rows(conn: psycopg.Connection, query: LiteralString, params: Row) -> list[Row]:
    return cast(list[Row], conn.execute(query, params).fetchall())


def measure(conn: psycopg.Connection, coop_id: Any, lot_id: Any, repeat: int, max_kg: float) -> Row:
    """The DDS build and the readiness of the lot, each against its ceiling (median ms)."""
    back = genealogy.trace_backward(conn, lot_id)
    lot_ids = [r["lot_id"] for r in back["lots"]]
    cherry_ids = [r["lot_id"] for r in back["lots"] if r["produced_by"] is None]
    step_ids = [t["id"] for t in back["transformations"]]
    tree_ids = [t["tree_id"] for t in back["trees"]]
    plot_ids = [p["plot_id"] for p in back["plots"]]

    def ceiling(*, readiness: bool) -> int:
        n = len(_rows(conn, SQL["bench_eudr_ceiling_lots"], {"ids": lot_ids}))
        n += len(_rows(conn, SQL["bench_eudr_ceiling_transformations"], {"ids": step_ids}))
        n += len(_rows(conn, SQL["bench_eudr_ceiling_lot_harvests"], {"ids": cherry_ids}))
        n += len(_rows(conn, SQL["bench_eudr_ceiling_trees"], {"ids": tree_ids}))
        n += len(_rows(conn, SQL["bench_eudr_ceiling_plots"], {"ids": plot_ids}))
        if readiness:
            n += len(_rows(conn, SQL["bench_eudr_ceiling_screenings"], {"ids": plot_ids}))
        else:
            n += len(_rows(conn, SQL["bench_eudr_ceiling_references"], {"ids": lot_ids}))
        return n

    dds_ms, doc = _timed(lambda: dds.build_dds(conn, lot_id, FILING), repeat)
    dds_ceiling_ms, dds_rows = _timed(lambda: ceiling(readiness=False), repeat)
    ready_ms, found = _timed(
        lambda: eudr_readiness.readiness(conn, coop_id, lot_id, max_cherry_kg_per_ha=max_kg),
        repeat,
    )
    ready_ceiling_ms, ready_rows = _timed(lambda: ceiling(readiness=True), repeat)
    return {
        "dds_ms": round(dds_ms, 2),
        "dds_ceiling_ms": round(dds_ceiling_ms, 2),
        "dds_ratio": round(dds_ms / dds_ceiling_ms, 2),
        "dds_ceiling_rows": dds_rows,
        "dds_statements": len(doc["statements"]),
        "dds_producers": doc["producers"]["entries"],
        "dds_plots": doc["producers"]["plots"],
        "dds_geolocation_bytes": sum(p["geolocation_bytes"] for p in doc["split"]["parts"]),
        "readiness_ms": round(ready_ms, 2),
        "readiness_ceiling_ms": round(ready_ceiling_ms, 2),
        "readiness_ratio": round(ready_ms / ready_ceiling_ms, 2),
        "readiness_ceiling_rows": ready_rows,
        "readiness_plots": len(found["plots"]),
        "readiness_blockers": len(found["blockers"]),
    }


def run(
    admin_url: str,
    *,
    max_cherry_kg_per_ha: float,
    trees: int,
    repeat: int,
    keep: bool,
    say: Callable[[str], None],
) -> Row:
    """Load, build, measure; prints the summary as the final JSON line and returns it."""
    if trees < CHERRY_LOT_TREES * 20 or trees % (CHERRY_LOT_TREES * 20):
        raise ValueError(f"trees must be a positive multiple of {CHERRY_LOT_TREES * 20}")
    with (
        scratch_database(admin_url, "ct_bench_eudr", keep=keep) as url,
        psycopg.connect(url, row_factory=dict_row) as dict_conn,
        tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_dir,
    ):
        conn = cast(psycopg.Connection, dict_conn)
        keys = KeyRing(Path(keys_dir))  # the scratch cooperative's keys, gone with it
        coop = registry.create_cooperative(conn, "bench", "Bench cooperative")
        conn.commit()
        t0 = time.perf_counter()
        load_store(
            conn,
            coop["id"],
            keys=keys,
            trees=trees,
            fed=trees,
            trees_per_plot=TREES_PER_PLOT,
            plots_per_farm=PLOTS_PER_FARM,
        )
        load_s = time.perf_counter() - t0
        plots = -(-trees // TREES_PER_PLOT)
        farms = -(-plots // PLOTS_PER_FARM)
        say(f"loaded {trees:,} trees on {plots:,} plots of {farms:,} farms in {load_s:.0f} s")
        t0 = time.perf_counter()
        quiet = logging.getLogger("coffeetrace.trace")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # one line per step of the build is noise here
        try:
            packed = build_fed_lot(conn, coop["id"], trees, keys)
        finally:
            quiet.setLevel(level)
        build_s = time.perf_counter() - t0
        say(f"built the lot from {trees:,} trees through 6 levels in {build_s:.1f} s")
        _script(conn, TRACE_SQL["bench_trace_analyze"], {})
        conn.commit()
        conn.autocommit = True
        result = measure(conn, coop["id"], packed["id"], repeat, max_cherry_kg_per_ha)
    summary = {
        "bench": "eudr",
        "trees": trees,
        "plots": plots,
        "farms": farms,
        "load_s": round(load_s, 1),
        "build_s": round(build_s, 1),
        "repeat": repeat,
        **result,
    }
    say(
        f"dds: {result['dds_ms']} ms for {result['dds_producers']:,} producers of"
        f" {result['dds_plots']:,} plots; ceiling {result['dds_ceiling_ms']} ms"
        f" -> ratio {result['dds_ratio']}"
    )
    say(
        f"readiness: {result['readiness_ms']} ms for {result['readiness_plots']:,} plots;"
        f" ceiling {result['readiness_ceiling_ms']} ms -> ratio {result['readiness_ratio']}"
    )
    print(json.dumps(summary, default=str), flush=True)
    return summary
