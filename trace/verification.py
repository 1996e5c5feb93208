"""Verifying a lot, or a whole chain, against the hash chain (chain.py).

Verification recomputes each hash, checks it against the stored one and against the
neighbours' links, and compares the lot and transformation rows with what their
events recorded, so an edit of either the log or the rows is named.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import GENESIS, event_hash
from coffeetrace.trace.genealogy import upstream_lot_ids
from coffeetrace.trace.jsonutil import canonical_json, iso_utc

SQL = load_queries("coffeetrace.trace", "chain.sql")
LOTS_SQL = load_queries("coffeetrace.trace", "lots.sql")

log = logging.getLogger(__name__)


def _recomputed(row: Row) -> str:
    return event_hash(
        seq=row["seq"],
        cooperative_id=row["cooperative_id"],
        kind=row["kind"],
        lot_ids=row["lot_ids"],
        occurred_at=row["occurred_at"],
        payload=row["payload"],
        prev_hash=row["prev_hash"],
    )


def _problem(row: Row | None, problem: str, detail: str) -> Row:  # row: the event named
    return {
        "seq": row["seq"] if row else None,
        "kind": row["kind"] if row else None,
        "problem": problem,
        "detail": detail,
    }


def _check_links(row: Row) -> list[Row]:
    """Hash and chain-link problems of one event row (with pred_/succ_ columns)."""
    problems = []
    if _recomputed(row) != row["hash"]:
        problems.append(
            _problem(
                row,
                "hash_mismatch",
                f"event {row['seq']} ({row['kind']}) was edited: its content no"
                " longer gives its stored hash",
            )
        )
    expected_prev = row["pred_hash"] if row["pred_seq"] is not None else GENESIS
    if row["prev_hash"] != expected_prev:
        problems.append(
            _problem(
                row,
                "chain_broken",
                f"event {row['seq']} ({row['kind']}) does not link to the"
                f" event before it (seq {row['pred_seq']})",
            )
        )
    if row["succ_seq"] is not None and row["succ_prev_hash"] != row["hash"]:
        problems.append(
            _problem(
                row,
                "chain_broken",
                f"event {row['seq']} ({row['kind']}) has a stored hash that the"
                f" next event (seq {row['succ_seq']}) did not chain to",
            )
        )
    return problems


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _compare_lot(event: Row, lot: Row, *, key: str = "lot") -> list[str]:
    """Differences between a lot row and the lot as its event recorded it."""
    recorded = event["payload"].get(key) if key else None
    if not isinstance(recorded, dict):
        return ["the event does not describe the lot"]
    diffs = []
    for field in ("code", "public_id", "kind"):
        if recorded.get(field) != lot[field]:
            diffs.append(f"{field} {recorded.get(field)!r} became {lot[field]!r}")
    if _dec(recorded.get("quantity_kg")) != lot["quantity_kg"]:
        diffs.append(f"quantity_kg {recorded.get('quantity_kg')} became {lot['quantity_kg']}")
    if _dec(recorded.get("cherry_equiv_kg")) != lot["cherry_equiv_kg"]:
        diffs.append(
            f"cherry_equiv_kg {recorded.get('cherry_equiv_kg')} became {lot['cherry_equiv_kg']}"
        )
    product = str(lot["product_id"]) if lot["product_id"] else None
    if recorded.get("product_id") != product:
        diffs.append(f"product_id {recorded.get('product_id')} became {product}")
    return diffs


def verify_lot(conn: DbConn, lot_id: UUID, *, lot_ids: list[UUID] | None = None) -> Row:
    """Check every event about the lot and its upstream lots, and the rows they describe.

    Returns {"ok": bool, "lot_id", "public_id", "code", "checked_events": int,
      "checked_lots": int, "chain_head": {"seq", "hash"} | None,
      "problems": [{"seq": int|None, "kind": str|None, "problem": "hash_mismatch" |
        "chain_broken" | "row_mismatch" | "missing_event", "detail": str}]}.
    A problem's seq/kind name the stored event concerned (None when the event is missing).
    `lot_ids`: the lot and its upstream lots, when the caller has them already.
    """
    target = q.one(conn, LOTS_SQL["lot_brief"], {"id": lot_id})
    if target is None:
        raise NotFound("no such lot", lot_id=str(lot_id))
    if lot_ids is None:
        lot_ids = upstream_lot_ids(conn, lot_id)
    lots = q.rows(conn, SQL["lots_for_verify"], {"lot_ids": lot_ids})
    # the events the rows point at, found even if an edit took the lot out of their lot_ids
    seqs = sorted({s for r in lots for s in (r["event_seq"], r["step_event_seq"]) if s})
    events = q.rows(conn, SQL["events_for_lots"], {"lot_ids": lot_ids, "seqs": seqs})
    problems: list[Row] = []
    for row in events:
        problems.extend(_check_links(row))
    problems.extend(_check_rows(conn, lot_ids, lots, events))
    head = q.one(conn, SQL["chain_head"], {"cooperative_id": target["cooperative_id"]})
    result = {
        "ok": not problems,
        "lot_id": target["id"],
        "public_id": target["public_id"],
        "code": target["code"],
        "checked_events": len(events),
        "checked_lots": len(lot_ids),
        "chain_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        "problems": problems,
    }
    log.info(
        "lot_verified lot_id=%s ok=%s events=%s problems=%s",
        lot_id,
        result["ok"],
        len(events),
        len(problems),
    )
    return result


def _check_rows(
    conn: DbConn, lot_ids: list[UUID], lot_rows: list[Row], events: list[Row]
) -> list[Row]:
    """Do the lot, harvest and transformation rows still say what their events said?"""
    lots = {r["id"]: r for r in lot_rows}
    by_seq = {ev["seq"]: ev for ev in events}
    created, steps = _events_by_subject(events)
    harvests: dict[str, dict[str, Decimal]] = {}
    for r in q.rows(conn, SQL["lot_harvests_for_lots"], {"lot_ids": lot_ids}):
        harvests.setdefault(str(r["lot_id"]), {})[str(r["harvest_id"])] = r["kg"]
    produced_by = {lot["produced_by"] for lot in lots.values() if lot["produced_by"]}
    transformations = {
        str(r["id"]): r
        for r in q.rows(conn, SQL["transformations_with_edges_by_ids"], {"ids": list(produced_by)})
    }
    problems: list[Row] = []
    for lot in lots.values():
        problems += _check_balance(lot, created, steps)
        if lot["produced_by"] is None:
            problems += _check_cherry_lot(lot, created, by_seq, harvests)
        else:
            problems += _check_step_lot(lot, steps, by_seq)
    problems += _check_transformations(steps, transformations, lots)
    return problems


def _events_by_subject(events: list[Row]) -> tuple[dict[str, Row], dict[str, Row]]:
    """(lot id -> its lot_created event, transformation id -> its transformation event)."""
    created: dict[str, Row] = {}
    steps: dict[str, Row] = {}
    for ev in events:
        payload = ev["payload"] if isinstance(ev["payload"], dict) else {}
        if ev["kind"] == "lot_created" and isinstance(payload.get("lot"), dict):
            created.setdefault(str(payload["lot"].get("id")), ev)
        elif ev["kind"] == "transformation" and payload.get("transformation_id"):
            steps.setdefault(str(payload["transformation_id"]), ev)
    return created, steps


def _check_balance(lot: Row, created: dict[str, Row], steps: dict[str, Row]) -> list[Row]:
    if lot["remaining_kg"] == lot["quantity_kg"] - lot["consumed_kg"]:
        return []
    named = created.get(str(lot["id"])) or steps.get(str(lot["produced_by"]))
    return [
        _problem(
            named,
            "row_mismatch",
            f"lot {lot['code']}: remaining_kg {lot['remaining_kg']} is not"
            f" quantity {lot['quantity_kg']} less consumed {lot['consumed_kg']}",
        )
    ]


def _unclaimed(pointed: Row | None, describes: str, missing: str) -> Row:
    """The event a row points at no longer describes it, or there is no event at all."""
    if pointed is None:
        return _problem(None, "missing_event", missing)
    return _problem(
        pointed,
        "row_mismatch",
        f"event {pointed['seq']} ({pointed['kind']}) no longer describes {describes}",
    )


def _check_cherry_lot(
    lot: Row,
    created: dict[str, Row],
    by_seq: dict[int, Row],
    harvests: dict[str, dict[str, Decimal]],
) -> list[Row]:
    """A lot built from harvests against its lot_created event (lot row and kilograms)."""
    lid = str(lot["id"])
    event = created.get(lid)
    if event is None:
        return [
            _unclaimed(
                by_seq.get(lot["event_seq"]),
                f"cherry lot {lot['code']}",
                f"cherry lot {lot['code']} has no lot_created event",
            )
        ]
    diffs = _compare_lot(event, lot)
    recorded = {str(h): _dec(kg) for h, kg in event["payload"].get("harvests", [])}
    if recorded != harvests.get(lid, {}):
        diffs.append("its harvest kilograms differ from the recorded ones")
    if not diffs:
        return []
    return [
        _problem(
            event,
            "row_mismatch",
            f"lot {lot['code']} no longer matches event {event['seq']} (lot_created): "
            + "; ".join(diffs),
        )
    ]


def _check_step_lot(lot: Row, steps: dict[str, Row], by_seq: dict[int, Row]) -> list[Row]:
    """A lot made by a processing step against that step's transformation event."""
    tid = str(lot["produced_by"])
    step_event = steps.get(tid)
    if step_event is None:
        return [
            _unclaimed(
                by_seq.get(lot["step_event_seq"]),
                f"transformation {tid} of lot {lot['code']}",
                f"lot {lot['code']} was made by transformation {tid}, which has"
                " no transformation event",
            )
        ]
    outs = {o.get("id"): o for o in step_event["payload"].get("outputs", [])}
    diffs = _compare_lot({"payload": {"lot": outs.get(str(lot["id"]))}}, lot)
    if not diffs:
        return []
    return [
        _problem(
            step_event,
            "row_mismatch",
            f"lot {lot['code']} no longer matches event {step_event['seq']} (transformation): "
            + "; ".join(diffs),
        )
    ]


def _check_transformations(
    steps: dict[str, Row], transformations: dict[str, Row], lots: dict[UUID, Row]
) -> list[Row]:
    """Every transformation event against its transformation row, inputs and outputs."""
    problems: list[Row] = []
    for tid, ev in steps.items():
        t = transformations.get(tid)
        if t is None:
            # the transformation of an upstream event that no lot in the set claims
            if any(str(o.get("id")) in map(str, lots) for o in ev["payload"].get("outputs", [])):
                problems.append(
                    _problem(
                        ev, "row_mismatch", f"transformation {tid} of event {ev['seq']} is gone"
                    )
                )
            continue
        diffs = _compare_transformation(ev["payload"], t)
        if diffs:
            problems.append(
                _problem(
                    ev,
                    "row_mismatch",
                    f"transformation {t['step']} {tid} no longer matches event"
                    f" {ev['seq']}: " + "; ".join(diffs),
                )
            )
    return problems


def _compare_transformation(recorded: Row, t: Row) -> list[str]:
    diffs = []
    for field in ("step", "place"):
        if recorded.get(field) != t[field]:
            diffs.append(f"{field} {recorded.get(field)!r} became {t[field]!r}")
    if recorded.get("occurred_at") != iso_utc(t["occurred_at"]):
        diffs.append(
            f"occurred_at {recorded.get('occurred_at')} became {iso_utc(t['occurred_at'])}"
        )
    for field in ("measurements", "evidence"):
        if canonical_json(recorded.get(field)) != canonical_json(t[field]):
            diffs.append(f"{field} changed")
    for field in ("input_kg", "output_kg"):
        if _dec(recorded.get(field)) != t[field]:
            diffs.append(f"{field} {recorded.get(field)} became {t[field]}")
    for side in ("inputs", "outputs"):
        stored = {str(x["lot_id"]): Decimal(x["kg"]) for x in t[side]}
        key = "lot_id" if side == "inputs" else "id"
        was = {str(x.get(key)): _dec(x.get("kg")) for x in recorded.get(side, [])}
        if stored != was:
            diffs.append(f"its {side} (lot, kg) differ from the recorded ones")
    return diffs


def verify_chain(conn: DbConn, cooperative_id: UUID, *, batch: int = 5000) -> Row:
    """Walk a cooperative's whole chain: {"ok", "checked_events", "chain_head", "problems"}."""
    problems: list[Row] = []
    prev_hash, prev_seq, after, count = GENESIS, None, 0, 0
    while True:
        rows = q.rows(
            conn,
            SQL["chain_events"],
            {"cooperative_id": cooperative_id, "after": after, "limit": batch},
        )
        if not rows:
            break
        for row in rows:
            count += 1
            if _recomputed(row) != row["hash"]:
                problems.append(
                    _problem(row, "hash_mismatch", f"event {row['seq']} ({row['kind']}) was edited")
                )
            if row["prev_hash"] != prev_hash:
                problems.append(
                    _problem(
                        row, "chain_broken", f"event {row['seq']} does not link to seq {prev_seq}"
                    )
                )
            prev_hash, prev_seq, after = row["hash"], row["seq"], row["seq"]
    return {
        "ok": not problems,
        "checked_events": count,
        "chain_head": {"seq": prev_seq, "hash": prev_hash} if prev_seq else None,
        "problems": problems,
    }
