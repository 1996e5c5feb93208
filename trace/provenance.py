"""The public, signed provenance document of a lot.

Only public fields: farm codes or consented display names, districts, plot codes and
growing-area codes, tree public ids; never farm_private data or plot geometry (a
plot's position can locate a household, which the privacy law treats as sensitive).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.genealogy import trace_backward
from coffeetrace.trace.jsonutil import iso_utc, jsonable

SQL = load_queries("coffeetrace.trace", "exports.sql")


def document(conn: DbConn, lot_id: UUID, *, backward: Row | None = None) -> Row:
    """The lot's provenance document as the database holds it now (unsigned: the writer
    signs it when the history moves, statements.py; read paths serve what was signed).

    document = {"type": "coffeetrace.provenance", "version": 1, "lot": {"public_id", "code",
      "kind", "quantity_kg": str, "product": name|None, "gtin": str|None, "harvest_from",
      "harvest_to"}, "cooperative": {"code", "name", "country", "province"},
      "steps": [{"step", "occurred_at", "place", "measurements", "evidence",
                 "inputs": [{"public_id", "code", "kg"}], "outputs": [same]}],
      "farms": [{"code", "display_name"|None, "district", "share"}],
      "plots": [{"code", "farm_code", "district", "growing_area_code", "altitude_m",
                 "area_ha", "share"}],
      "trees": [{"public_id", "tag_code", "share"}],
      "chain": {"head_seq", "head_hash", "events": [{"seq", "kind", "hash"}]}}.
    All values are JSON-native (kg and dates as strings, shares as floats rounded to 9
    decimals).
    """
    trace = backward if backward is not None else trace_backward(conn, lot_id)
    lot = trace["lot"]
    lot_ids = [r["lot_id"] for r in trace["lots"]]
    ident = {r["id"]: r for r in q.rows(conn, SQL["lot_identities"], {"ids": lot_ids})}
    steps = q.rows(
        conn, SQL["transformation_details"], {"ids": [t["id"] for t in trace["transformations"]]}
    )
    coop = q.one(conn, SQL["cooperative"], {"id": lot["cooperative_id"]}) or {}
    plots = {
        p["id"]: p
        for p in q.rows(
            conn, SQL["plots_for_export"], {"ids": [p["plot_id"] for p in trace["plots"]]}
        )
    }
    events = q.rows(conn, SQL["events_of_lots"], {"lot_ids": lot_ids})

    def side(entries: list[Row] | None) -> list[Row]:
        return [
            {
                "public_id": ident[UUID(e["lot_id"])]["public_id"],
                "code": ident[UUID(e["lot_id"])]["code"],
                "kg": e["kg"],
            }
            for e in entries or []
            if UUID(e["lot_id"]) in ident
        ]

    farms_by_id: dict[Any, Row] = {}
    for p in trace["plots"]:
        info = plots[p["plot_id"]]
        farm = farms_by_id.setdefault(
            p["farm_id"],
            {
                "code": info["farm_code"],
                "display_name": info["display_name"] if info["display_name_consent"] else None,
                "district": info["farm_district"],
                "share": 0.0,
            },
        )
        farm["share"] += p["share"]
    doc = {
        "type": "coffeetrace.provenance",
        "version": 1,
        "lot": {
            "public_id": lot["public_id"],
            "code": lot["code"],
            "kind": lot["kind"],
            "quantity_kg": str(lot["quantity_kg"]),
            "product": lot["product_name"],
            "gtin": lot["gtin"],
            "harvest_from": lot["harvest_from"],
            "harvest_to": lot["harvest_to"],
        },
        "cooperative": {k: coop.get(k) for k in ("code", "name", "country", "province")},
        "steps": [
            {
                "step": s["step"],
                "occurred_at": iso_utc(s["occurred_at"]),
                "place": s["place"],
                # only when given (migration 0052): documents signed before keep their form
                **({"place_i18n": s["place_i18n"]} if s.get("place_i18n") else {}),
                "measurements": s["measurements"],
                "evidence": s["evidence"],
                "inputs": side(s["inputs"]),
                "outputs": side(s["outputs"]),
            }
            for s in steps
        ],
        "farms": [{**f, "share": round(f["share"], 9)} for f in farms_by_id.values()],
        "plots": [
            {
                "code": plots[p["plot_id"]]["code"],
                "farm_code": plots[p["plot_id"]]["farm_code"],
                "district": plots[p["plot_id"]]["district"],
                "growing_area_code": plots[p["plot_id"]]["growing_area_code"],
                "altitude_m": plots[p["plot_id"]]["altitude_m"],
                "area_ha": str(plots[p["plot_id"]]["area_ha"]),
                "share": round(p["share"], 9),
            }
            for p in trace["plots"]
        ],
        "trees": [
            {"public_id": t["public_id"], "tag_code": t["tag_code"], "share": round(t["share"], 9)}
            for t in trace["trees"]
        ],
        "chain": {
            "head_seq": events[-1]["seq"] if events else None,
            "head_hash": events[-1]["hash"] if events else None,
            "events": [{"seq": e["seq"], "kind": e["kind"], "hash": e["hash"]} for e in events],
        },
    }
    result: Row = jsonable(doc)
    return result
