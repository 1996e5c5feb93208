"""Plausibility flags: figures that are possible to store but not to believe.

Flags are stored (plausibility_flags) and shown to the cooperative; nothing is refused:
a flagged harvest is real data that someone must look at, not data to drop.
"""

from __future__ import annotations

import logging
from datetime import date
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.geometry import tree_in_plot
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules

SQL = load_queries("coffeetrace.trace", "plausibility.sql")

log = logging.getLogger(__name__)
YOUNG_TREE_YEARS = 3
YOUNG_TREE_FACTOR = 0.3  # share of a mature tree's yield a tree under 3 years may give


def flags_for_lot(
    conn: DbConn,
    lot_id: UUID,
    *,
    factor: float | None = None,
    typical_cherry_kg: float | None = None,
    rules: TraceRules = DEFAULT_RULES,
) -> list[Row]:
    """Flags about the trees and harvests that fed the lot (upstream included), computed
    from the current data: [{"kind": "tree_season_yield"|"harvest_before_planting"|
    "tree_outside_plot", "cooperative_id", "tree_id", "tag_code", "harvest_id"|None,
    "season"|None, "details": {...}}]. Defaults: rules.tree_yield_flag_factor and
    rules.typical_tree_cherry_kg."""
    factor = rules.tree_yield_flag_factor if factor is None else factor
    if typical_cherry_kg is None:
        typical_cherry_kg = rules.typical_tree_cherry_kg
    trees = {r["tree_id"]: r for r in q.rows(conn, SQL["lot_trees"], {"lot_id": lot_id})}
    if not trees:
        return []
    tree_ids = list(trees)
    flags: list[Row] = []

    def flag(
        kind: str,
        tree_id: UUID,
        details: Row,
        harvest_id: UUID | None = None,
        season: int | None = None,
    ) -> None:
        tree = trees[tree_id]
        flags.append(
            {
                "kind": kind,
                "cooperative_id": tree["cooperative_id"],
                "tree_id": tree_id,
                "tag_code": tree["tag_code"],
                "harvest_id": harvest_id,
                "season": season,
                "details": jsonable(details),
            }
        )

    for h in q.rows(conn, SQL["harvests_before_planting"], {"tree_ids": tree_ids}):
        flag(
            "harvest_before_planting",
            h["tree_id"],
            {"harvest_time": h["harvest_time"], "planted_on": h["planted_on"]},
            harvest_id=h["harvest_id"],
        )
    for s in q.rows(conn, SQL["tree_season_totals"], {"tree_ids": tree_ids}):
        typical = typical_cherry_kg
        planted = s["planted_on"]
        age_days = (date(s["season"], 8, 1) - planted).days if planted is not None else None
        if age_days is not None and age_days < 365 * YOUNG_TREE_YEARS:
            typical *= YOUNG_TREE_FACTOR
        limit = factor * typical
        if float(s["cherry_kg"]) > limit:
            flag(
                "tree_season_yield",
                s["tree_id"],
                {
                    "season_cherry_kg": s["cherry_kg"],
                    "harvests": s["harvests"],
                    "limit_kg": round(limit, 3),
                    "typical_kg": round(typical, 3),
                    "factor": factor,
                },
                season=s["season"],
            )
    for tree in trees.values():
        if tree["lon"] is None or tree["lat"] is None:
            continue
        if not tree_in_plot(tree["lon"], tree["lat"], tree["geometry"], tree["area_ha"]):
            flag(
                "tree_outside_plot",
                tree["tree_id"],
                {"lon": tree["lon"], "lat": tree["lat"], "plot_code": tree["plot_code"]},
            )
    return flags


def record_flags_for_lot(
    conn: DbConn, lot_id: UUID, *, rules: TraceRules = DEFAULT_RULES
) -> list[Row]:
    """Compute the lot's flags and store new ones; returns all current flags."""
    flags = flags_for_lot(conn, lot_id, rules=rules)
    for f in flags:
        q.execute(
            conn,
            SQL["insert_flag"],
            {
                "cooperative_id": f["cooperative_id"],
                "kind": f["kind"],
                "tree_id": f["tree_id"],
                "harvest_id": f["harvest_id"],
                "season": f["season"],
                "details": Jsonb(f["details"]),
            },
        )
    if flags:
        log.warning("plausibility_flags lot_id=%s flags=%s", lot_id, len(flags))
    return flags


def flags_for_cooperative(conn: DbConn, cooperative_id: UUID, limit: int = 500) -> list[Row]:
    """Stored flags of the cooperative, newest first: [{"id", "kind", "tree_id", "tag_code",
    "harvest_id", "season", "details", "created_at"}]."""
    return q.rows(
        conn, SQL["flags_for_cooperative"], {"cooperative_id": cooperative_id, "limit": limit}
    )
