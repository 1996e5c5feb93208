"""What the public lot and tree pages show, gathered from public fields only.

The story of a lot (which trees, plots and farms, how much of each, cultivars, ages, plot
outlines) is the page data the writer stored with the lot's signed statement
(trace/page_snapshots.py); this module adds the season's weather from the stored daily
aggregates and the latest verification, and never reads farm_private.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.db import Row
from coffeetrace.errors import NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import (
    dds_references,
    genealogy,
    page_snapshots,
    provenance,
    statements,
    verification,
)
from coffeetrace.trace.keys import KeyRing

VERIFY_FIELDS = ("ok", "checked_events", "problems")


SQL = load_queries("coffeetrace.api", "page.sql")


def _age_years(planted_on: date | None, today: date) -> float | None:
    return page_snapshots.age_years(planted_on, today)


def season_window(lot: dict[str, Any]) -> tuple[datetime, datetime]:
    """The twelve months of growing that ended with the lot's last harvest day."""
    return page_snapshots.season_window(lot)


def lot_story(conn: psycopg.Connection[dict[str, Any]], lot_id: UUID, keys: KeyRing) -> Row:
    """What the lot's public verify answer tells, from one walk upstream: {"signed": the
    stored statement as served (statements.served), or the rebuilt document unsigned for a
    lot that has none, "verification": verification.verify_lot()}. The result is stored
    beside the lot's page data (page_snapshots.record_verification), so the page's badge
    shows it."""
    backward = genealogy.trace_backward(conn, lot_id)
    signed = statements.served(conn, lot_id) or {
        "document": provenance.document(conn, lot_id, backward=backward),
        "signature": None,
        "checkpoint": None,
        "inclusion": [],
    }
    checked = verification.verify_lot(conn, lot_id, keys=keys, backward=backward)
    page_snapshots.record_verification(conn, keys, lot_id, _summary(checked))
    return {"signed": signed, "verification": checked}


def provenance_json(conn: psycopg.Connection[dict[str, Any]], lot_id: UUID) -> Row:
    """The signed provenance as served (the rebuilt document unsigned for a lot that has
    no statement): no verification, which the verify answer does."""
    return statements.served(conn, lot_id) or {
        "document": provenance.document(conn, lot_id),
        "signature": None,
        "checkpoint": None,
        "inclusion": [],
    }


def _summary(checked: Row) -> Row:
    return {
        "ok": bool(checked.get("ok")),
        "checked_events": checked.get("checked_events", 0),
        "problems": len(checked.get("problems", [])),
    }


def lot_row(conn: psycopg.Connection[dict[str, Any]], lot_id: UUID) -> Row:
    """The lot as its page shows it (code, kind, quantity, product name and GTIN,
    cooperative); NotFound for no such lot."""
    lot = conn.execute(SQL["lot_page_lot"], {"lot_id": lot_id}).fetchone()
    if lot is None:
        raise NotFound("lot not found")
    return lot


def _dates(lot: dict[str, Any]) -> dict[str, Any]:
    """The lot row as stored in JSON, with its dates as dates again."""
    out = dict(lot)
    for key in ("harvest_from", "harvest_to"):
        if out.get(key):
            out[key] = date.fromisoformat(out[key])
    if out.get("created_at"):
        out["created_at"] = datetime.fromisoformat(out["created_at"])
    return out


def lot_page(
    conn: psycopg.Connection[dict[str, Any]],
    lot_id: UUID,
    keys: KeyRing,
    verify_max_age_s: float = 86400.0,
    dds_environment: str | None = None,
) -> dict[str, Any]:
    """Everything the lot page renders, as plain data: the lot's stored page data
    (page_snapshots: built by the writer, from the signed statement, so the page and the
    document a buyer can verify tell the same story), the season's weekly weather from
    plot_metrics_daily, and the latest verification (run again here when none is stored
    or it is older than `verify_max_age_s`). NotFound for no such lot."""

    snap = page_snapshots.read(conn, keys, lot_id)
    if snap is None:
        coop = conn.execute(SQL["page_lot_cooperative"], {"lot_id": lot_id}).fetchone()
        if coop is None:
            raise NotFound("lot not found")
        snap = page_snapshots.rebuild(conn, keys, lot_id, coop["cooperative_id"])
    data = snap["data"]
    checked = snap["verification"]
    now = datetime.now(UTC)
    if checked is None or (now - snap["verified_at"]).total_seconds() >= verify_max_age_s:
        checked = _summary(verification.verify_lot(conn, lot_id, keys=keys))
        page_snapshots.record_verification(conn, keys, lot_id, checked)

    trees = dict(data["trees"])
    grown = (now.date() - date.fromisoformat(trees.pop("ages_on"))).days / 365.25
    for key in ("age_min", "age_max", "age_median"):
        if trees.get(key) is not None:
            trees[key] += grown
    plots = data["plots"]
    since, until = (datetime.fromisoformat(d) for d in data["season"])
    conditions: dict[str, list[tuple[datetime, float]]] = {}
    if plots:
        for row in conn.execute(
            SQL["page_conditions"],
            {"ids": [p["id"] for p in plots], "since": since, "until": until},
        ).fetchall():
            conditions.setdefault(row["metric"], []).append((row["week"], float(row["value"])))
    return {
        "lot": _dates(data["lot"]),
        "trees": trees,
        "map": {"plots": plots, "trees": [tuple(p) for p in data["map_trees"]]},
        "farms": data["farms"],
        "plots": plots,
        "conditions": conditions,
        "season": (since.date(), (until - timedelta(days=1)).date()),
        "steps": data["steps"],
        "certifications": data["certifications"],
        "eudr": data["eudr"],
        # read at request time: references are recorded without moving the lot's history
        "dds": dds_references.page_summary(
            dds_references.in_force(conn, lot_id, environment=dds_environment)
        ),
        "verification": {
            **{k: checked.get(k) for k in VERIFY_FIELDS},
            "head_hash": data["head_hash"],
            "head_seq": data["head_seq"],
            "signature": data["signature"] or {},
        },
    }


def tree_page(conn: psycopg.Connection[dict[str, Any]], public_id: str) -> dict[str, Any] | None:
    """The tree page: cultivar, age, plot, harvests by season and the lots it went into."""

    tree = conn.execute(SQL["tree_page"], {"public_id": public_id}).fetchone()
    if tree is None:
        return None
    seasons = conn.execute(SQL["tree_harvests_by_season"], {"tree_id": tree["id"]}).fetchall()
    forward = genealogy.trace_forward(conn, tree_id=tree["id"])
    lots = sorted(forward.get("lots", []), key=lambda lot: (lot.get("depth", 0), lot["code"]))
    today = datetime.now(UTC).date()
    return {
        "tree": tree,
        "age": _age_years(tree["planted_on"], today),
        "seasons": seasons,
        "lots": lots[:50],
    }
