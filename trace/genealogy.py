"""Backward and forward traces through the lot graph, with kilogram shares.

A lot made by a transformation takes from each input lot the fraction
input kg / total input kg of that transformation; a cherry lot takes from each harvest
(and so from its tree) harvest kg / lot kg. Shares are these fractions multiplied
along every path and summed over paths, so the trees' shares of a lot sum to 1.
The recursive queries start from the lot (or tree) and follow indexed edges only,
so their cost follows the size of the answer, not of the store.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import external_origins
from coffeetrace.trace import queries as q
from coffeetrace.trace.lot_lookup import lot_by_id

SQL = load_queries("coffeetrace.trace", "genealogy.sql")


def upstream_lot_ids(conn: DbConn, lot_id: UUID) -> list[UUID]:
    """The lot and every lot upstream of it."""
    return [r["lot_id"] for r in q.rows(conn, SQL["upstream_lot_ids"], {"lot_id": lot_id})]


def trace_backward(conn: DbConn, lot_id: UUID) -> Row:
    """Everything a lot came from.

    Returns {"lot": lot dict,
      "lots": [{"lot_id", "public_id", "code", "kind", "quantity_kg": Decimal, "depth": int
                (0 = the lot itself, shortest path), "share": float (fraction of the lot),
                "produced_by": UUID|None}],
      "transformations": [{"id", "step", "occurred_at", "place"}] (by time),
      "harvests": [{"harvest_id", "harvest_time", "tree_id", "lot_id" (cherry lot),
                    "kg": Decimal (kg of the harvest in that cherry lot), "share": float}],
      "trees": [{"tree_id", "public_id", "tag_code", "plot_id", "share": float, "kg": float}],
      "plots": [{"plot_id", "code", "farm_id", "area_ha", "share", "kg"}],
      "farms": [{"farm_id", "code", "share", "kg"}],
      "external": [external lots behind it (external_origins.of_lots): {"lot_id",
                   "public_id", "code", "origin_country", "producer", "share", "kg", ...}]}
    where kg = share x the lot's quantity_kg; tree/plot/farm shares each sum to 1 with
    the external lots' shares (1 without them);
    trees/plots/farms are sorted by share, largest first.
    NotFound when the lot does not exist. The caller checks tenancy (get_lot) first.
    """
    lot = lot_by_id(conn, lot_id)
    lots = q.rows(conn, SQL["upstream_lots"], {"lot_id": lot_id})
    cherry = [r for r in lots if r["produced_by"] is None]
    harvest_rows = q.rows(
        conn,
        SQL["harvests_of_cherry_lots"],
        {"lot_ids": [r["lot_id"] for r in cherry], "fracs": [r["share"] for r in cherry]},
    )
    steps = q.rows(
        conn,
        SQL["transformations_by_ids"],
        {"ids": list({r["produced_by"] for r in lots if r["produced_by"]})},
    )
    total = lot["quantity_kg"]
    trees: dict[UUID, Row] = {}
    plots: dict[UUID, Row] = {}
    farms: dict[UUID, Row] = {}
    for h in harvest_rows:
        share = h["share"]
        _add(
            trees,
            h["tree_id"],
            share,
            tree_id=h["tree_id"],
            public_id=h["tree_public_id"],
            tag_code=h["tag_code"],
            plot_id=h["plot_id"],
        )
        _add(
            plots,
            h["plot_id"],
            share,
            plot_id=h["plot_id"],
            code=h["plot_code"],
            farm_id=h["farm_id"],
            area_ha=h["area_ha"],
        )
        _add(farms, h["farm_id"], share, farm_id=h["farm_id"], code=h["farm_code"])
    return {
        "lot": lot,
        "lots": [
            {
                **{
                    k: r[k]
                    for k in (
                        "lot_id",
                        "public_id",
                        "code",
                        "kind",
                        "quantity_kg",
                        "depth",
                        "produced_by",
                        "cooperative_id",
                    )
                },
                "share": float(r["share"]),
            }
            for r in lots
        ],
        "transformations": steps,
        "harvests": [
            {
                "harvest_id": h["harvest_id"],
                "harvest_time": h["harvest_time"],
                "tree_id": h["tree_id"],
                "lot_id": h["lot_id"],
                "kg": h["kg"],
                "share": float(h["share"]),
            }
            for h in harvest_rows
        ],
        "trees": _finish(trees, total),
        "plots": _finish(plots, total),
        "farms": _finish(farms, total),
        "external": external_origins.of_lots(conn, cherry, total),
    }


def _add(acc: dict[UUID, Row], key: UUID, share: Decimal, **fields: Any) -> None:
    entry = acc.get(key)
    if entry is None:
        acc[key] = {**fields, "share": share}
    else:
        entry["share"] += share


def _finish(acc: dict[UUID, Row], total: Decimal) -> list[Row]:
    out = [{**e, "share": float(e["share"]), "kg": float(e["share"] * total)} for e in acc.values()]
    out.sort(key=lambda e: -e["share"])
    return out


def trace_forward(
    conn: DbConn,
    *,
    lot_id: UUID | None = None,
    tree_id: UUID | None = None,
    plot_id: UUID | None = None,
    farm_id: UUID | None = None,
) -> Row:
    """Every lot downstream of exactly one of lot/tree/plot/farm (for recalls).

    Returns {"source": {"kind": "lot"|"tree"|"plot"|"farm", "id": UUID},
      "lots": [{"lot_id", "public_id", "code", "kind", "cooperative_id", "quantity_kg",
                "depth": int (0 = the start lot, or a cherry lot fed directly by the source),
                "share": float (fraction of that lot coming from the source),
                "terminal": bool (not consumed by any transformation yet)}]}.
    The QR/lot page of each lot is {public_base_url}/l/{public_id}. Lots are ordered by
    depth, then code. The caller checks tenancy of the source first.
    """
    given = [
        (k, v)
        for k, v in (("lot", lot_id), ("tree", tree_id), ("plot", plot_id), ("farm", farm_id))
        if v is not None
    ]
    if len(given) != 1:
        raise ValidationFailed(
            "trace forward from exactly one of lot_id, tree_id, plot_id, farm_id", field="source"
        )
    kind, source = given[0]
    if kind == "lot":
        lot_by_id(conn, source)  # NotFound for an unknown lot
        starts = [{"lot_id": source, "frac": Decimal(1)}]
    else:
        if kind == "tree":
            tree_ids = [source]
        elif kind == "plot":
            tree_ids = [
                r["id"] for r in q.rows(conn, SQL["trees_of_plots"], {"plot_ids": [source]})
            ]
        else:
            tree_ids = [r["id"] for r in q.rows(conn, SQL["trees_of_farm"], {"farm_id": source})]
        starts = q.rows(conn, SQL["cherry_lots_of_trees"], {"tree_ids": tree_ids})
    if not starts:
        return {"source": {"kind": kind, "id": source}, "lots": []}
    lots = q.rows(
        conn,
        SQL["downstream_lots"],
        {"lot_ids": [s["lot_id"] for s in starts], "fracs": [s["frac"] for s in starts]},
    )
    for r in lots:
        r["share"] = float(r["share"])
    return {"source": {"kind": kind, "id": source}, "lots": lots}
