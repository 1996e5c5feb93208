"""What the public lot and tree pages show, gathered from public fields only.

The story of a lot (which trees, plots and farms, and how much of each) comes from the
trace package's backward trace and signed provenance document; this module adds what a
page needs besides (tree cultivars and ages, plot outlines, season weather) and never
reads farm_private.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.db import Row
from coffeetrace.errors import NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import eudr, genealogy, provenance, statements, verification
from coffeetrace.trace.keys import KeyRing

MAX_MAP_TREES = 3000
TOP_TREES = 10


SQL = load_queries("coffeetrace.api", "page.sql")


def _age_years(planted_on: date | None, today: date) -> float | None:
    if planted_on is None:
        return None
    return (today - planted_on).days / 365.25


def season_window(lot: dict[str, Any]) -> tuple[datetime, datetime]:
    """The twelve months of growing that ended with the lot's last harvest day."""
    end_day = lot.get("harvest_to") or lot.get("harvest_from") or lot["created_at"].date()
    until = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
    return until - timedelta(days=365), until


def lot_story(conn: psycopg.Connection[dict[str, Any]], lot_id: UUID, keys: KeyRing) -> Row:
    """What a lot's public page tells, from one walk upstream: {"signed": the stored
    statement as served (statements.served), or the rebuilt document unsigned for a lot
    that has none, "verification": verification.verify_lot()}."""
    backward = genealogy.trace_backward(conn, lot_id)
    signed = statements.served(conn, lot_id) or {
        "document": provenance.document(conn, lot_id, backward=backward),
        "signature": None,
        "checkpoint": None,
        "inclusion": [],
    }
    checked = verification.verify_lot(conn, lot_id, keys=keys, backward=backward)
    return {"signed": signed, "verification": checked}


def lot_row(conn: psycopg.Connection[dict[str, Any]], lot_id: UUID) -> Row:
    """The lot as its page shows it (code, kind, quantity, product name and GTIN,
    cooperative); NotFound for no such lot."""
    lot = conn.execute(SQL["lot_page_lot"], {"lot_id": lot_id}).fetchone()
    if lot is None:
        raise NotFound("lot not found")
    return lot


def lot_page(
    conn: psycopg.Connection[dict[str, Any]], lot_id: UUID, keys: KeyRing
) -> dict[str, Any]:
    """Everything the lot page renders, as plain data.

    Shares of trees, plots and farms come from the signed statement, so the page and
    the document a buyer can verify always tell the same story.
    """

    lot = lot_row(conn, lot_id)
    story = lot_story(conn, lot_id, keys)  # one walk upstream
    signed, checked = story["signed"], story["verification"]
    doc = signed["document"]
    quantity = float(lot["quantity_kg"])

    shares = {t["public_id"]: t for t in doc.get("trees", [])}
    tree_rows = (
        conn.execute(SQL["page_trees"], {"public_ids": list(shares)}).fetchall() if shares else []
    )
    today = datetime.now(UTC).date()
    ages = [a for a in (_age_years(t["planted_on"], today) for t in tree_rows) if a is not None]
    cultivars = Counter(t["cultivar"] or "-" for t in tree_rows)
    by_public = {t["public_id"]: t for t in tree_rows}
    top = sorted(shares.values(), key=lambda t: float(t.get("share") or 0), reverse=True)
    top_trees = [
        {
            "tag_code": t["tag_code"],
            "public_id": t["public_id"],
            "kg": float(t.get("share") or 0) * quantity,
            "share": float(t.get("share") or 0),
            "cultivar": (by_public.get(t["public_id"]) or {}).get("cultivar"),
        }
        for t in top[:TOP_TREES]
    ]
    points = [
        (t["lon"], t["lat"]) for t in tree_rows if t["lon"] is not None and t["lat"] is not None
    ]
    if len(points) > MAX_MAP_TREES:
        points = points[:: len(points) // MAX_MAP_TREES + 1]

    doc_plots = {p["code"]: p for p in doc.get("plots", [])}
    shapes = conn.execute(
        SQL["page_plots"], {"cooperative_id": lot["cooperative_id"], "codes": list(doc_plots)}
    ).fetchall()
    plots = [
        {**doc_plots[p["code"]], **p, "share": float(doc_plots[p["code"]].get("share") or 0)}
        for p in shapes
    ]
    plots.sort(key=lambda p: p["share"], reverse=True)
    farms = sorted(
        ({**f, "share": float(f.get("share") or 0)} for f in doc.get("farms", [])),
        key=lambda f: f["share"],
        reverse=True,
    )

    since, until = season_window(lot)
    conditions: dict[str, list[tuple[datetime, float]]] = {}
    if plots:
        for row in conn.execute(
            SQL["page_conditions"],
            {"ids": [p["id"] for p in plots], "since": since, "until": until},
        ).fetchall():
            conditions.setdefault(row["metric"], []).append((row["week"], float(row["value"])))

    steps = sorted(doc.get("steps", []), key=lambda s: str(s.get("occurred_at")))
    certifications = [
        dict(e, step=s.get("step"))
        for s in steps
        for e in (s.get("evidence") or [])
        if isinstance(e, dict)
    ]
    head = doc.get("chain", {})
    return {
        "lot": lot,
        "trees": {
            "count": len(shares),
            "cultivars": cultivars.most_common(),
            "age_min": min(ages) if ages else None,
            "age_max": max(ages) if ages else None,
            "age_median": statistics.median(ages) if ages else None,
            "top": top_trees,
        },
        "map": {"plots": plots, "trees": points},
        "farms": farms,
        "plots": plots,
        "conditions": conditions,
        "season": (since.date(), (until - timedelta(days=1)).date()),
        "steps": steps,
        "certifications": certifications,
        "eudr": eudr.plots_status(plots),
        "verification": {
            "ok": bool(checked.get("ok")),
            "checked_events": checked.get("checked_events", 0),
            "problems": len(checked.get("problems", [])),
            "head_hash": head.get("head_hash"),
            "head_seq": head.get("head_seq"),
            "signature": signed.get("signature") or {},
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
