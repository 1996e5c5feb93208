"""`coffeetrace bench seed`: bulk tree seeding against raw COPY of the same rows.

In a scratch database: the plan's farms and plots go through the registry, then its
trees are seeded with the bulk path (row generation and the trees' registry versions,
one signed chain event per batch of plots, included in the time) into the real `trees`
table, which ends with all its keys, foreign keys and indexes. The very same bytes are
then COPYed, in one statement each, into two scratch tables:

- "shaped": LIKE trees INCLUDING ALL plus the same foreign keys — the raw cost of loading
  these rows into a table of that shape; `ratio` (target >= 0.5) is against this one;
- "bare": the same columns and defaults only — the floor of any load; `ratio_vs_bare`
  shows how far index and key maintenance keep the seeding from it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coffeetrace.db import scratch_database
from coffeetrace.simulators.plan import WorldSpec, make_plan
from coffeetrace.simulators.seeding import copy_trees
from coffeetrace.sql import load_queries
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace_bench", "seed.sql")
TARGET_RATIO = 0.5
# connections of the project hand out dict rows
Conn = psycopg.Connection[Any]
# the raw ceilings: (name, its table's CREATE statements, the COPY into it)
CEILINGS = (
    ("shaped", SQL["bench_seed_create_copy_shaped"], SQL["bench_seed_copy_shaped"]),
    ("bare", SQL["bench_seed_create_copy_bare"], SQL["bench_seed_copy_bare"]),
)


def bench_seed(
    server_url: str,
    *,
    trees: int,
    seed: int = 2025,
    keep: bool = False,
    say: Callable[[str], None],
    progress: bool = True,
) -> dict[str, Any]:
    """Run the seeding benchmark in a scratch database on `server_url`'s server (the
    scratch cooperative's signing keys live in a temporary directory, gone with it)."""
    with (
        scratch_database(server_url, "ct_bench_seed", keep=keep) as url,
        tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_dir,
    ):
        return _run(
            url, trees=trees, seed=seed, say=say, progress=progress, keys=KeyRing(Path(keys_dir))
        )


def _run(
    url: str,
    *,
    trees: int,
    seed: int,
    say: Callable[[str], None],
    progress: bool,
    keys: KeyRing,
) -> dict[str, Any]:
    plan = make_plan(WorldSpec(coop_code=f"bench-{seed}", seed=seed, trees=trees))
    say(f"plan: {len(plan.farms):,} farms, {len(plan.plots):,} plots, {plan.tree_count:,} trees")
    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    kept: list[bytes] = []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        registry_t0 = time.perf_counter()
        with conn.transaction():
            seeded = _seed_registry(conn, plan, keys)
        registry_s = time.perf_counter() - registry_t0
        with Progress(*cols, disable=not progress, transient=True) as bar:
            task = bar.add_task("seeding trees (bulk)", total=plan.tree_count)
            t1 = time.perf_counter()
            with conn.transaction():
                n = copy_trees(
                    conn,
                    seeded[0],
                    plan.plots,
                    seeded[1],
                    keys=keys,
                    progress=lambda k: bar.advance(task, k),
                    keep=kept,
                )
            seed_s = time.perf_counter() - t1
        raw: dict[str, float] = {}
        for table, create, copy_into in CEILINGS:
            with conn.transaction():
                for statement in create.split(";"):
                    conn.execute(statement)
            t2 = time.perf_counter()
            with conn.transaction(), conn.cursor().copy(copy_into) as copy:
                for chunk in kept:
                    copy.write(chunk)
            raw[table] = time.perf_counter() - t2
        with conn.transaction():
            stored = cast(dict[str, Any], conn.execute(SQL["bench_seed_count_trees"]).fetchone())[
                "n"
            ]
            conn.execute(SQL["bench_seed_drop_copy_scratch"])
    ratio = raw["shaped"] / seed_s
    result = {
        "benchmark": "seed",
        "trees": n,
        "stored": stored,
        "farms": len(plan.farms),
        "plots": len(plan.plots),
        "registry_s": round(registry_s, 3),
        "seed_s": round(seed_s, 3),
        "trees_per_s": round(n / seed_s),
        "raw_copy_shaped_s": round(raw["shaped"], 3),
        "raw_copy_shaped_rows_per_s": round(n / raw["shaped"]),
        "raw_copy_bare_s": round(raw["bare"], 3),
        "raw_copy_bare_rows_per_s": round(n / raw["bare"]),
        "ratio": round(ratio, 3),
        "ratio_vs_bare": round(raw["bare"] / seed_s, 3),
        "target_ratio": TARGET_RATIO,
        "ok": ratio >= TARGET_RATIO and stored == n,
    }
    say(
        f"seeding: {n:,} trees in {seed_s:.2f} s ({n / seed_s:,.0f}/s, generation included); "
        f"raw COPY of the same rows into a trees-shaped scratch table: {raw['shaped']:.2f} s, "
        f"into a bare one: {raw['bare']:.2f} s; ratio {ratio:.2f} (target >= {TARGET_RATIO}),"
        f" {raw['bare'] / seed_s:.2f} against the bare table"
    )
    print(json.dumps(result), flush=True)
    return result


def _seed_registry(conn: Conn, plan: Any, keys: KeyRing) -> tuple[Any, dict[str, Any]]:
    """Cooperative, farms and plots through the registry (devices are not needed here)."""
    from coffeetrace.trace import registry

    coop = registry.create_cooperative(conn, plan.spec.coop_code, plan.spec.coop_name)
    plot_ids = {}
    for farm in plan.farms:
        row = registry.create_farm(
            conn, coop["id"], farm.code, keys=keys, district=farm.district.name
        )
        for plot in farm.plots:
            plot_ids[plot.code] = registry.create_plot(
                conn,
                coop["id"],
                row["id"],
                plot.code,
                plot.geometry,
                plot.area_ha,
                keys=keys,
                altitude_m=plot.altitude_m,
                district=plot.district.name,
            )["id"]
    return coop["id"], plot_ids
