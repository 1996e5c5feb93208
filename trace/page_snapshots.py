"""What a lot's public page shows, built when the lot's history moves and stored.

The writer that signs a lot's statement (statements.refresh) stores the page's data in
the same transaction: the statement's signature and chain head, and beside it what the
page shows of the trees, plots and farms (cultivars, ages, map points, plot outlines,
shares, steps, certifications, EUDR geolocation status). A page miss then reads one row
by primary key and the season's weather from plot_metrics_daily by index: no genealogy
walk and no signing at request time.

A registry version of a plot, tree, farm or product (registry_versions.record_facts)
deletes the snapshots that show it; the next page miss builds it again (rebuild) and
stores it. Verification is not part of the build: its latest result is stored beside
the snapshot by whoever verifies the lot (the public verify answer, or a page render
once the stored result is older than the API's COFFEETRACE_PAGE_VERIFY_MAX_AGE_S).

A snapshot is a cache of signed facts, but a page believes it: each row carries the
organisation's signature over the lot, the data and the verification (its seal), made
when it is written, and read() checks it. A row edited with psql (a name changed, a
failed verification turned green) fails the check, is logged and built again from the
signed statement and the verified records instead of being shown.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import eudr, provenance
from coffeetrace.trace import queries as q
from coffeetrace.trace.genealogy import trace_backward
from coffeetrace.trace.jsonutil import canonical_json, jsonable
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "page_snapshots.sql")
SEAL_DOMAIN = "coffeetrace.page-snapshot.v1"

log = logging.getLogger(__name__)
MAX_MAP_TREES = 3000
TOP_TREES = 10


def age_years(planted_on: date | None, today: date) -> float | None:
    if planted_on is None:
        return None
    return (today - planted_on).days / 365.25


def season_window(lot: Row) -> tuple[datetime, datetime]:
    """The twelve months of growing that ended with the lot's last harvest day."""
    end_day = lot.get("harvest_to") or lot.get("harvest_from") or lot["created_at"].date()
    until = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
    return until - timedelta(days=365), until


def build(
    conn: DbConn,
    lot_id: UUID,
    document: Row,
    signature: Row | None,
    *,
    today: date | None = None,
) -> Row:
    """The page's data of a lot whose provenance document (signed with `signature`, or
    None) is `document`, JSON-native. Ages are as of `today` (stored as "ages_on")."""
    lot = q.one(conn, SQL["snapshot_lot"], {"lot_id": lot_id})
    if lot is None:
        raise ValueError(f"no lot {lot_id}")
    today = today or datetime.now(UTC).date()
    quantity = float(lot["quantity_kg"])
    shares = {t["public_id"]: t for t in document.get("trees", [])}
    tree_rows = q.rows(conn, SQL["snapshot_trees"], {"public_ids": list(shares)}) if shares else []
    ages = [a for a in (age_years(t["planted_on"], today) for t in tree_rows) if a is not None]
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
        [t["lon"], t["lat"]] for t in tree_rows if t["lon"] is not None and t["lat"] is not None
    ]
    if len(points) > MAX_MAP_TREES:
        points = points[:: len(points) // MAX_MAP_TREES + 1]

    doc_plots = {p["code"]: p for p in document.get("plots", [])}
    shapes = (
        q.rows(
            conn,
            SQL["snapshot_plots"],
            {"cooperative_id": lot["cooperative_id"], "codes": list(doc_plots)},
        )
        if doc_plots
        else []
    )
    plots = [
        {**doc_plots[p["code"]], **p, "share": float(doc_plots[p["code"]].get("share") or 0)}
        for p in shapes
    ]
    plots.sort(key=lambda p: p["share"], reverse=True)
    farms = sorted(
        ({**f, "share": float(f.get("share") or 0)} for f in document.get("farms", [])),
        key=lambda f: f["share"],
        reverse=True,
    )
    since, until = season_window(lot)
    steps = sorted(document.get("steps", []), key=lambda s: str(s.get("occurred_at")))
    certifications = [
        dict(e, step=s.get("step"))
        for s in steps
        for e in (s.get("evidence") or [])
        if isinstance(e, dict)
    ]
    head = document.get("chain", {})
    data = {
        "lot": lot,
        "trees": {
            "count": len(shares),
            "cultivars": cultivars.most_common(),
            "age_min": min(ages) if ages else None,
            "age_max": max(ages) if ages else None,
            "age_median": statistics.median(ages) if ages else None,
            "ages_on": today,
            "top": top_trees,
        },
        "map_trees": points,
        "plots": plots,
        "farms": farms,
        "season": [since, until],
        "steps": steps,
        "certifications": certifications,
        "eudr": eudr.plots_status(plots),
        "head_hash": head.get("head_hash"),
        "head_seq": head.get("head_seq"),
        "signature": signature or {},
    }
    result: Row = jsonable(data)
    return result


def _sealed(lot_id: UUID, data: Any, verification: Any) -> bytes:
    return canonical_json({"lot_id": str(lot_id), "data": data, "verification": verification})


def store(
    conn: DbConn,
    keys: KeyRing,
    lot_id: UUID,
    cooperative_id: UUID,
    statement_id: int | None,
    document: Row,
    signature: Row | None,
) -> Row:
    """Build the lot's page data and store it sealed (a new version, not yet verified), in
    the caller's transaction."""
    data = build(conn, lot_id, document, signature)
    q.execute(
        conn,
        SQL["snapshot_upsert"],
        {
            "lot_id": lot_id,
            "cooperative_id": cooperative_id,
            "statement_id": statement_id,
            "plot_ids": [UUID(p["id"]) for p in data["plots"]],
            "data": Jsonb(data),
            "seal": Jsonb(keys.sign(cooperative_id, SEAL_DOMAIN, _sealed(lot_id, data, None))),
        },
    )
    return data


def read(conn: DbConn, keys: KeyRing, lot_id: UUID) -> Row | None:
    """{"version", "data", "verification", "verified_at", ...}, or None when not built or
    when its seal does not hold (the row was changed outside the application: logged)."""
    found = q.one(conn, SQL["snapshot_read"], {"lot_id": lot_id})
    if found is None:
        return None
    sealed = _sealed(lot_id, found["data"], found["verification"])
    why = keys.verify(found["cooperative_id"], SEAL_DOMAIN, sealed, found["seal"])
    if why is not None:
        log.warning("page_snapshot_not_sealed lot_id=%s reason=%s: built again", lot_id, why)
        return None
    return found


def rebuild(conn: DbConn, keys: KeyRing, lot_id: UUID, cooperative_id: UUID) -> Row:
    """Build and store the snapshot of a lot that has none (deleted by a registry change,
    or a lot written before snapshots) or whose seal failed: from its newest signed
    statement, or the document rebuilt unsigned for a lot that has none. Walks the
    genealogy once; returns the stored row."""
    stmt = q.one(conn, SQL["snapshot_newest_statement"], {"lot_id": lot_id})
    if stmt is not None:
        store(conn, keys, lot_id, cooperative_id, stmt["id"], stmt["document"], stmt["signature"])
    else:
        doc = provenance.document(conn, lot_id, backward=trace_backward(conn, lot_id))
        store(conn, keys, lot_id, cooperative_id, None, doc, None)
    found = q.one(conn, SQL["snapshot_read"], {"lot_id": lot_id})
    assert found is not None  # stored just now, in this transaction
    return found


def record_verification(conn: DbConn, keys: KeyRing, lot_id: UUID, summary: Row) -> None:
    """Store the latest verification summary {"ok", "checked_events", "problems"}, sealed
    with the data it is stored beside (nothing when the lot has no snapshot yet)."""
    found = q.one(conn, SQL["snapshot_read"], {"lot_id": lot_id})
    if found is None:
        return
    checked = jsonable(summary)
    sealed = _sealed(lot_id, found["data"], checked)
    q.execute(
        conn,
        SQL["snapshot_set_verification"],
        {
            "lot_id": lot_id,
            "verification": Jsonb(checked),
            "seal": Jsonb(keys.sign(found["cooperative_id"], SEAL_DOMAIN, sealed)),
        },
    )


def invalidate(conn: DbConn, cooperative_id: UUID, entity: str, ids: Iterable[UUID | str]) -> None:
    """Delete the snapshots that show the registry rows `ids` of `entity` (plot, tree,
    farm: the lots of their plots; product: every lot of the cooperative)."""
    found = q.one(conn, SQL["snapshot_any_of_cooperative"], {"cooperative_id": cooperative_id})
    if not (found and found["any"]):
        return  # bulk seeding: nothing built yet, nothing to look up
    wanted = [UUID(str(i)) for i in ids]
    if entity == "product":
        q.execute(conn, SQL["snapshot_delete_for_cooperative"], {"cooperative_id": cooperative_id})
        return
    if entity == "tree":
        wanted = [r["id"] for r in q.rows(conn, SQL["snapshot_plots_of_trees"], {"ids": wanted})]
    elif entity == "farm":
        wanted = [r["id"] for r in q.rows(conn, SQL["snapshot_plots_of_farms"], {"ids": wanted})]
    if wanted:
        q.execute(conn, SQL["snapshot_delete_for_plots"], {"plot_ids": wanted})
