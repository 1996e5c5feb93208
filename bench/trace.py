"""`coffeetrace bench trace`: trace cost against the size of the answer, not of the store.

Loads a store of N trees (one harvest each, background lots of 100 trees with a drying
step) into a scratch database, builds one lot fed by `fed` trees through 6 levels of
processing with the real functions (drying, hulling, grading into two grades, blending,
roasting, packing), then times backward and forward traces against the ceiling: fetching
the same answer rows by id, in the same run. The cross-organisation case (trace_cross.py)
does the same for a retail lot whose trail crosses 4 organisations and 8 shipments over
`cross_fed` more trees of the store.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from psycopg.rows import dict_row

from coffeetrace.db import scratch_database
from coffeetrace.sql import load_queries
from coffeetrace.trace import (
    batches,
    genealogy,
    lots,
    processing,
    registry,
    registry_versions,
    verification,
)
from coffeetrace.trace.keys import KeyRing
from coffeetrace_bench import trace_cross

SQL = load_queries("coffeetrace_bench", "trace.sql")
log = logging.getLogger(__name__)
Row = dict[str, Any]
CHERRY_LOT_TREES = 100


def _script(conn: psycopg.Connection, script: LiteralString, params: dict[str, Any]) -> None:
    """Run the statements of `script` one by one (a named query of several statements)."""
    for stmt in script.split(";\n"):
        if stmt.strip():
            conn.execute(stmt, params)


def _rows(
    conn: psycopg.Connection, query: LiteralString, params: dict[str, Any] | None = None
) -> list[Row]:
    return cast(list[Row], conn.execute(query, params or {}).fetchall())


def load_store(
    conn: psycopg.Connection,
    coop_id: uuid.UUID,
    *,
    keys: KeyRing,
    trees: int,
    fed: int,
    trees_per_plot: int = 1000,
    plots_per_farm: int = 2,
) -> None:
    """`fed`: the trees kept out of the background lots (the first ones), for the traced
    lots to take."""
    plots = -(-trees // trees_per_plot)
    farms = -(-plots // plots_per_farm)
    params = dict(
        cooperative_id=coop_id,
        trees=trees,
        fed=fed,
        farms=farms,
        plots=plots,
        trees_per_plot=trees_per_plot,
        plots_per_farm=plots_per_farm,
    )
    for name, script in (
        ("farms", SQL["bench_trace_farms"]),
        ("plots", SQL["bench_trace_plots"]),
        ("trees", SQL["bench_trace_trees"]),
        ("harvests", SQL["bench_trace_harvests"]),
        ("background_lots", SQL["bench_trace_background_lots"]),
    ):
        t0 = time.perf_counter()
        _script(conn, script, params)
        conn.commit()
        log.info("bench_loaded part=%s seconds=%.1f", name, time.perf_counter() - t0)
        if name == "trees":
            # the registry rows loaded with SQL get their versions (one event per 5,000)
            t0 = time.perf_counter()
            registry_versions.record_missing_versions(conn, keys, coop_id)
            conn.commit()
            log.info("bench_loaded part=registry_versions seconds=%.1f", time.perf_counter() - t0)
    # fresh statistics, as autovacuum would give a real store
    _script(conn, SQL["bench_trace_analyze"], {})
    conn.commit()


def build_fed_lot(conn: psycopg.Connection, coop_id: uuid.UUID, fed: int, keys: KeyRing) -> Row:
    """The traced lot: `fed` trees -> cherry lots of 100 -> 6 processing levels."""
    harvest_ids = [
        r["harvest_id"] for r in _rows(conn, SQL["bench_trace_fed_harvests"], {"fed": fed})
    ]
    # the traced lot's harvests sealed in ingest batches, as ingest seals what it stores
    # (the background lots' harvests are never verified here, and stay unsealed)
    batches.seal_harvests(conn, keys, harvest_ids)
    t = datetime(2025, 12, 1, tzinfo=UTC)  # after its harvests, not in the future
    from coffeetrace.settings import DEFAULT_STEP_MAX_YIELD as yields

    def step(
        name: str, groups: list[list[Row]], outs: Callable[[int, Decimal], list[Row]], day: int
    ) -> list[Row]:
        made = []
        for g, group in enumerate(groups):
            total = sum((x["quantity_kg"] for x in group), Decimal(0))
            r = processing.record_transformation(
                conn,
                coop_id,
                step=name,
                occurred_at=t + timedelta(days=day),
                inputs=[(x["id"], x["quantity_kg"]) for x in group],
                outputs=outs(g, total),
                measurements={"moisture_pct": 12.0},
                max_yield=yields,
                keys=keys,
            )
            made.extend(r["outputs"])
        return made

    def chunks(items: list[Row], n: int) -> list[list[Row]]:
        return [items[i : i + n] for i in range(0, len(items), n)]

    cherry = [
        lots.build_cherry_lot(
            conn,
            coop_id,
            code=f"FC-{i}",
            harvest_ids=harvest_ids[i * CHERRY_LOT_TREES : (i + 1) * CHERRY_LOT_TREES],
            keys=keys,
        )
        for i in range(-(-len(harvest_ids) // CHERRY_LOT_TREES))
    ]
    dried = step(
        "drying",
        [[c] for c in cherry],
        lambda g, kg: [{"code": f"FD-{g}", "kg": kg / 2, "kind": "dried_cherry"}],
        1,
    )
    hulled = step(
        "hulling",
        chunks(dried, 2),
        lambda g, kg: [{"code": f"FH-{g}", "kg": kg / 2, "kind": "green"}],
        2,
    )
    graded = step(
        "grading",
        chunks(hulled, 2),
        lambda g, kg: [
            {"code": f"FG-{g}-A", "kg": kg * Decimal("0.6"), "kind": "green"},
            {"code": f"FG-{g}-B", "kg": kg * Decimal("0.35"), "kind": "green"},
        ],
        3,
    )
    # blends take grades of neighbouring gradings, so paths cross (a DAG, not a tree)
    blended = step(
        "blending",
        chunks(graded, 5),
        lambda g, kg: [{"code": f"FB-{g}", "kg": kg, "kind": "blend"}],
        4,
    )
    roasted = step(
        "roasting",
        chunks(blended, 2),
        lambda g, kg: [{"code": f"FR-{g}", "kg": kg * Decimal("0.84"), "kind": "roasted"}],
        5,
    )
    packed = step(
        "packing", [roasted], lambda g, kg: [{"code": "FP-1", "kg": kg, "kind": "packed"}], 6
    )
    conn.commit()
    return packed[0]


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    fn()  # warm the cache: both sides are measured warm
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


def measure_verify(conn: psycopg.Connection, packed: Row, keys: KeyRing, repeat: int) -> Row:
    """verify_lot of the traced lot against reading the rows it checks by id: its lots,
    events, harvests, registry rows with their version events, ingest batches, statement."""
    ver_ms, report = _timed(lambda: verification.verify_lot(conn, packed["id"], keys=keys), repeat)
    back = genealogy.trace_backward(conn, packed["id"])
    lot_ids = [r["lot_id"] for r in back["lots"]]
    cherry_ids = [r["lot_id"] for r in back["lots"] if r["produced_by"] is None]

    def ceiling() -> int:
        n = len(_rows(conn, SQL["bench_trace_ceiling_lots"], {"ids": lot_ids}))
        n += len(_rows(conn, SQL["bench_trace_ceiling_verify_events"], {"ids": lot_ids}))
        n += len(_rows(conn, SQL["bench_trace_ceiling_verify_harvest_rows"], {"ids": cherry_ids}))
        for query, key, id_key in (
            (SQL["bench_trace_ceiling_verify_trees"], "trees", "tree_id"),
            (SQL["bench_trace_ceiling_verify_plots"], "plots", "plot_id"),
            (SQL["bench_trace_ceiling_verify_farms"], "farms", "farm_id"),
        ):
            n += len(_rows(conn, query, {"ids": [r[id_key] for r in back[key]]}))
        n += len(
            _rows(
                conn,
                SQL["bench_trace_ceiling_verify_registry_events"],
                {
                    "trees": [r["tree_id"] for r in back["trees"]],
                    "plots": [r["plot_id"] for r in back["plots"]],
                    "farms": [r["farm_id"] for r in back["farms"]],
                },
            )
        )
        n += len(
            _rows(
                conn,
                SQL["bench_trace_ceiling_transformations"],
                {"ids": [t["id"] for t in back["transformations"]]},
            )
        )
        n += len(_rows(conn, SQL["bench_trace_ceiling_verify_batches"], {"ids": cherry_ids}))
        n += len(_rows(conn, SQL["bench_trace_ceiling_verify_statement"], {"id": packed["id"]}))
        return n

    ceil_ms, rows = _timed(ceiling, repeat)
    return {
        "verify_ms": round(ver_ms, 2),
        "verify_ceiling_ms": round(ceil_ms, 2),
        "verify_ratio": round(ver_ms / ceil_ms, 2),
        "verify_ok": report["ok"],
        "verify_problems": len(report["problems"]),
        "verify_events": report["checked_events"],
        "verify_ceiling_rows": rows,
    }


def ceiling_backward(conn: psycopg.Connection, back: Row) -> Callable[[], int]:
    """Fetching a backward trace's answer rows by id (lots, harvests, trees, plots, farms,
    steps): the ceiling a trace is timed against."""
    lot_ids = [r["lot_id"] for r in back["lots"]]
    cherry_ids = [r["lot_id"] for r in back["lots"] if r["produced_by"] is None]
    tree_ids = [t["tree_id"] for t in back["trees"]]

    def ceiling_back() -> int:
        n = len(_rows(conn, SQL["bench_trace_ceiling_lots"], {"ids": lot_ids}))
        n += len(_rows(conn, SQL["bench_trace_ceiling_harvests"], {"ids": cherry_ids}))
        n += len(_rows(conn, SQL["bench_trace_ceiling_trees"], {"ids": tree_ids}))
        n += len(
            _rows(
                conn,
                SQL["bench_trace_ceiling_plots"],
                {"ids": [p["plot_id"] for p in back["plots"]]},
            )
        )
        n += len(
            _rows(
                conn,
                SQL["bench_trace_ceiling_farms"],
                {"ids": [f["farm_id"] for f in back["farms"]]},
            )
        )
        n += len(
            _rows(
                conn,
                SQL["bench_trace_ceiling_transformations"],
                {"ids": [t["id"] for t in back["transformations"]]},
            )
        )
        return n

    return ceiling_back


def measure(
    conn: psycopg.Connection, packed: Row, fed_tree: uuid.UUID, fed_farm: uuid.UUID, repeat: int
) -> Row:
    back_ms, back = _timed(lambda: genealogy.trace_backward(conn, packed["id"]), repeat)
    lot_ids = [r["lot_id"] for r in back["lots"]]
    tree_ids = [t["tree_id"] for t in back["trees"]]
    ceiling_back = ceiling_backward(conn, back)

    back_ceiling_ms, back_rows = _timed(ceiling_back, repeat)
    out: Row = {
        "backward_ms": round(back_ms, 2),
        "backward_ceiling_ms": round(back_ceiling_ms, 2),
        "backward_ratio": round(back_ms / back_ceiling_ms, 2),
        "backward_rows": back_rows,
        "backward_trees": len(tree_ids),
        "backward_lots": len(lot_ids),
        "shares_sum": round(sum(t["share"] for t in back["trees"]), 12),
    }
    for label, kwargs, ids in (
        ("forward_tree", {"tree_id": fed_tree}, [fed_tree]),
        ("forward_farm", {"farm_id": fed_farm}, None),
    ):

        def forward(kw: dict[str, Any] = kwargs) -> Row:
            return genealogy.trace_forward(conn, **kw)

        fwd_ms, fwd = _timed(forward, repeat)
        start_trees = ids or [
            r["id"] for r in _rows(conn, SQL["bench_trace_trees_of_farm"], {"farm_id": fed_farm})
        ]
        answer = [r["lot_id"] for r in fwd["lots"]]

        def ceiling_fwd(trees: list[Any] = start_trees, answer: list[Any] = answer) -> int:
            return len(
                _rows(conn, SQL["bench_trace_ceiling_lot_harvests_of_trees"], {"ids": trees})
            ) + len(_rows(conn, SQL["bench_trace_ceiling_lots"], {"ids": answer}))

        ceil_ms, rows = _timed(ceiling_fwd, repeat)
        out.update(
            {
                f"{label}_ms": round(fwd_ms, 2),
                f"{label}_ceiling_ms": round(ceil_ms, 2),
                f"{label}_ratio": round(fwd_ms / ceil_ms, 2),
                f"{label}_lots": len(answer),
                f"{label}_reaches_packed": packed["id"] in answer,
            }
        )
    return out


def run(
    admin_url: str,
    *,
    trees: int,
    fed: int,
    repeat: int,
    keep: bool,
    say: Callable[[str], None],
    cross_fed: int | None = None,
) -> Row:
    """`cross_fed`: the trees feeding the cross-organisation case (default `fed`; 0: no
    such case)."""
    cross = fed if cross_fed is None else cross_fed
    if fed > trees or fed % (CHERRY_LOT_TREES * 20):
        raise ValueError(f"fed trees must be a multiple of {CHERRY_LOT_TREES * 20}, <= trees")
    if cross < 0 or cross % CHERRY_LOT_TREES or fed + cross > trees:
        raise ValueError(
            f"cross-organisation trees must be a multiple of {CHERRY_LOT_TREES}, and with the"
            " fed trees at most the store's"
        )
    with (
        scratch_database(admin_url, "ct_bench_trace", keep=keep) as url,
        psycopg.connect(url, row_factory=dict_row) as dict_conn,
        tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_dir,
    ):
        conn = cast(psycopg.Connection, dict_conn)
        keys = KeyRing(Path(keys_dir))  # the scratch cooperative's keys, gone with it
        coop = registry.create_cooperative(conn, "bench", "Bench cooperative")
        conn.commit()
        t0 = time.perf_counter()
        load_store(conn, coop["id"], keys=keys, trees=trees, fed=fed + cross)
        load_s = time.perf_counter() - t0
        say(f"loaded {trees:,} trees with one harvest each in {load_s:.0f} s")
        t0 = time.perf_counter()
        quiet = logging.getLogger("coffeetrace.trace")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # one line per step of the build is noise here
        try:
            packed = build_fed_lot(conn, coop["id"], fed, keys)
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            crossed = None
            if cross:
                cross_harvests = [
                    r["harvest_id"]
                    for r in _rows(
                        conn, SQL["bench_trace_cross_harvests"], {"fed": fed, "cross": cross}
                    )
                ]
                crossed = trace_cross.build_cross_trail(conn, coop["id"], cross_harvests, keys)
            cross_build_s = time.perf_counter() - t0
        finally:
            quiet.setLevel(level)
        say(f"built the traced lot from {fed:,} trees through 6 levels in {build_s:.1f} s")
        if crossed is not None:
            say(
                f"built the cross-organisation trail from {cross:,} trees through"
                f" {trace_cross.ORGANISATIONS} organisations and {trace_cross.SHIPMENTS}"
                f" shipments in {cross_build_s:.1f} s"
            )
        _script(conn, SQL["bench_trace_analyze"], {})
        conn.commit()
        conn.autocommit = True
        counts = cast(Row, conn.execute(SQL["bench_trace_store_counts"]).fetchone() or {})
        first = _rows(conn, SQL["bench_trace_fed_harvests"], {"fed": 1})[0]["harvest_id"]
        fed_tree: Row = cast(
            Row, conn.execute(SQL["bench_trace_fed_tree"], {"id": first}).fetchone()
        )
        result = measure(conn, packed, fed_tree["tree_id"], fed_tree["farm_id"], repeat)
        result.update(measure_verify(conn, packed, keys, repeat))
        if crossed is not None:
            result.update(
                trace_cross.measure_cross(conn, crossed, keys, repeat, _timed, ceiling_backward)
            )
    summary = {
        "bench": "trace",
        "trees": trees,
        "fed_trees": fed,
        "cross_fed_trees": cross,
        "levels": 6,
        "store": {k: int(v) for k, v in counts.items()},
        "load_s": round(load_s, 1),
        "build_s": round(build_s, 1),
        "repeat": repeat,
        **result,
    }
    say(
        f"backward: {result['backward_ms']} ms for {result['backward_trees']:,} trees,"
        f" {result['backward_lots']} lots; ceiling {result['backward_ceiling_ms']} ms"
        f" -> ratio {result['backward_ratio']}"
    )
    say(
        f"verify: {result['verify_ms']} ms ({'OK' if result['verify_ok'] else 'PROBLEMS'},"
        f" {result['verify_events']} events); ceiling {result['verify_ceiling_ms']} ms for"
        f" {result['verify_ceiling_rows']:,} rows -> ratio {result['verify_ratio']}"
    )
    if crossed is not None:
        say(
            f"cross-organisation backward: {result['cross_backward_ms']} ms for"
            f" {result['cross_trees']:,} trees, {result['cross_lots']} lots,"
            f" {result['cross_organisations']} organisations, {result['cross_shipments']}"
            f" shipments; ceiling {result['cross_backward_ceiling_ms']} ms -> ratio"
            f" {result['cross_backward_ratio']} (the roaster's view: ratio"
            f" {result['cross_view_ratio']})"
        )
    for label in ("forward_tree", "forward_farm"):
        say(
            f"{label}: {result[label + '_ms']} ms, {result[label + '_lots']} lots; ceiling"
            f" {result[label + '_ceiling_ms']} ms -> ratio {result[label + '_ratio']}"
        )
    print(json.dumps(summary, default=str), flush=True)
    return summary
