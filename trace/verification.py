"""Verifying a lot, or a whole chain, against the hash chain (chain.py).

Verification recomputes each hash, checks it against the stored one, the neighbours'
links and the writer's signature (keys.py), and compares the rows with what their events
recorded: lots, lot inputs and their harvests (each harvest against its ingest batch,
batches.py), transformations, and the registry facts in force (registry_versions.py). The
lot's stored statement must still verify and still say what the rows say now
(statements.py), and the chain must extend every checkpoint known: the newest stored one,
the witness's, and one the caller kept (checkpoints.py). The chain audit also holds the
captured EPCIS events (epcis_events) to the eventIDs and event hashes their capture's
chain event recorded, and the trading partnerships (organisation_partners) to the
newest of their signed events. Every problem names the event
(seq, kind) and, where there is one, the record ({"type", "id"}).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import CoffeetraceError, NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import (
    batches,
    checkpoints,
    dds_references,
    epcis_capture,
    epcis_hash,
    epcis_trail,
    eudr_evidence,
    external_lots,
    merkle,
    merkle_store,
    provenance,
    records,
    registry_versions,
    shipment_checks,
    statements,
    trail,
)
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import EVENT_DOMAIN, GENESIS, event_hash
from coffeetrace.trace.genealogy import trace_backward
from coffeetrace.trace.jsonutil import canonical_json, iso_utc
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "chain.sql")
LOTS_SQL = load_queries("coffeetrace.trace", "lots.sql")
RECORDS_SQL = load_queries("coffeetrace.trace", "verification_records.sql")
PARTNERSHIP_KINDS = ("partnership_proposed", "partnership_accepted", "partnership_declined",
                     "partnership_ended")  # fmt: skip
# the column a partnership's status stamps with its event's occurred_at
STATUS_TIME = {"proposed": "proposed_at", "active": "accepted_at", "declined": "declined_at",
               "ended": "ended_at"}  # fmt: skip
EPCIS_COLUMNS = ("event_type", "action", "biz_step", "disposition", "read_point",
                 "biz_location", "transformation_id", "parent_id", "epcs", "input_epcs",
                 "output_epcs", "any_epcs", "epc_classes", "input_classes", "output_classes",
                 "any_classes")  # fmt: skip

log = logging.getLogger(__name__)


def _recomputed(row: Row) -> str:
    """The hash the event's content gives (kept on the row: several checks need it)."""
    cached: str | None = row.get("_recomputed")
    if cached is None:
        cached = row["_recomputed"] = event_hash(
            seq=row["seq"],
            cooperative_id=row["cooperative_id"],
            kind=row["kind"],
            lot_ids=row["lot_ids"],
            occurred_at=row["occurred_at"],
            payload=row["payload"],
            prev_hash=row["prev_hash"],
        )
    return cached


def _problem(
    row: Row | None, problem: str, detail: str, record: tuple[str, Any] | None = None
) -> Row:  # row: the event named; record: (type, id) of the row concerned
    out: Row = {
        "seq": row["seq"] if row else None,
        "kind": row["kind"] if row else None,
        "problem": problem,
        "detail": detail,
    }
    if record is not None:
        out["record"] = {"type": record[0], "id": str(record[1])}
    return out


def _check_signature(keys: KeyRing, row: Row) -> list[Row]:
    """The writer signed the event's hash when it appended it; psql cannot."""
    if row.get("signature") is None:
        return [
            _problem(
                row,
                "unsigned_event",
                f"event {row['seq']} ({row['kind']}) carries no signature: it was not"
                " written by the application (or before signatures; see"
                " `coffeetrace keys sign-legacy`)",
            )
        ]
    reason = keys.verify(
        row["cooperative_id"], EVENT_DOMAIN, _recomputed(row).encode(), row["signature"]
    )
    if reason is None:
        return []
    return [_problem(row, "signature_invalid", f"event {row['seq']} ({row['kind']}): {reason}")]


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


def verify_lot(
    conn: DbConn,
    lot_id: UUID,
    *,
    keys: KeyRing,
    kept: Row | None = None,
    backward: Row | None = None,
) -> Row:
    """Check every event about the lot and its upstream lots, the rows they describe, the
    lot's signed statement and the checkpoints of the chain.

    Returns {"ok": bool, "lot_id", "public_id", "code", "checked_events": int,
      "checked_lots": int,
      "chain_head": {"seq", "hash"} | None (the newest event of the cooperative's whole
        chain: what a checkpoint covers),
      "lot_head": {"seq", "hash"} | None (the newest event about this lot: what its page
        and signed statement name; "chain_head" means the cooperative's chain everywhere),
      "checkpoint": {"tree_size", "root_hash", "issued_at", "source"} | None (the largest
        checkpoint the lot's events were proven against),
      "problems": [{"seq": int|None, "kind": str|None, "problem": "hash_mismatch" |
        "chain_broken" | "signature_invalid" | "unsigned_event" | "row_mismatch" |
        "missing_event" | "missing_statement" | "chain_truncated" | "not_in_checkpoint" |
        "checkpoint_invalid" | "checkpoint_inconsistent", "detail": str,
        "record": {"type", "id"} (when a row is concerned), "organisation": {"id",
        "code", "name"} (whose chain or record it is, where known)}]}.
    A problem's seq/kind name the stored event concerned (None when the event is missing;
    for a truncated chain, the newest seq the checkpoint held).
    `kept`: a checkpoint {"body", "signature"} the caller kept from earlier.
    `backward`: trace_backward(lot) when the caller has it already.
    """
    target = q.one(conn, LOTS_SQL["lot_brief"], {"id": lot_id})
    if target is None:
        raise NotFound("no such lot", lot_id=str(lot_id))
    if backward is None:
        backward = trace_backward(conn, lot_id)
    lot_ids = [r["lot_id"] for r in backward["lots"]]
    coop = target["cooperative_id"]
    lots = q.rows(conn, SQL["lots_for_verify"], {"lot_ids": lot_ids})
    registry_ids = dict(
        tree_ids=[t["tree_id"] for t in backward["trees"]],
        plot_ids=[p["plot_id"] for p in backward["plots"]],
        farm_ids=[f["farm_id"] for f in backward["farms"]],
        product_ids=sorted({r["product_id"] for r in lots if r["product_id"]}),
    )
    # the events the rows point at, found even if an edit took the lot out of their lot_ids,
    # and the registry events holding the versions in force (their hashes and signatures
    # are checked like the lots' events: an edit of a row and its event's facts shows)
    # (each row is read once: the rows name the events, the checks below compare them)
    harvest_ids = [h["harvest_id"] for h in backward["harvests"]]
    harvest_rows = batches.harvest_rows(conn, harvest_ids)
    registry_rows = registry_versions.registry_rows(conn, **registry_ids)
    seqs = sorted(
        {s for r in lots for s in (r["event_seq"], r["step_event_seq"]) if s}
        | {r["event_seq"] for rs in registry_rows.values() for r in rs if r["event_seq"]}
        | {h["batch_seq"] for h in harvest_rows if h["batch_seq"] is not None}
        | dds_references.event_seqs(conn, lot_ids)
    )
    events = q.rows(conn, SQL["events_for_lots"], {"lot_ids": lot_ids, "seqs": seqs})
    problems: list[Row] = []
    for row in events:
        problems.extend(_check_links(row))
        problems.extend(_check_signature(keys, row))
    # the batch events' hashes, links and signatures are checked with the others above
    leaves: dict[UUID, bytes] = {}
    problems.extend(
        batches.verify_harvests(
            conn, harvest_ids, check_event_hash=False, rows=harvest_rows, leaves_out=leaves
        )
    )
    harvests_by_id = {h["id"]: h for h in harvest_rows}
    problems.extend(_check_rows(conn, lot_ids, lots, events, harvests_by_id, leaves))
    problems.extend(shipment_checks.check_lots(conn, lot_ids))
    problems.extend(external_lots.check_lots(conn, lot_ids))
    problems.extend(dds_references.check_lots(conn, lot_ids))
    problems.extend(
        registry_versions.verify_registry(
            conn, **registry_ids, events={ev["seq"]: ev for ev in events}, rows=registry_rows
        )
    )
    rebuilt = provenance.document(conn, lot_id, backward=backward)
    problems.extend(
        statements.check(keys, statements.newest(conn, lot_id), rebuilt, target["code"])
    )
    # A lot's history crosses organisations (a shipment's receipt makes the receiver's lot
    # of the sender's): each organisation's events are held to its own chain's checkpoints.
    by_chain: dict[UUID, list[Row]] = {}
    for ev in events:
        by_chain.setdefault(ev["cooperative_id"], []).append(ev)
    proven, cp_problems = _check_checkpoints(conn, keys, coop, by_chain.pop(coop, []), kept)
    cp_problems = [{**p, "organisation": {"id": str(coop)}} for p in cp_problems]
    for other in sorted(by_chain, key=str):
        cp_problems += [
            {**p, "organisation": {"id": str(other)}}
            for p in _check_checkpoints(conn, keys, other, by_chain[other], None)[1]
        ]
    problems.extend(cp_problems)
    # each problem names the organisation whose chain or record fails (trail.py)
    problems = trail.attribute(conn, problems)
    head = q.one(conn, SQL["chain_head"], {"cooperative_id": coop})
    result = {
        "ok": not problems,
        "lot_id": target["id"],
        "public_id": target["public_id"],
        "code": target["code"],
        "checked_events": len(events),
        "checked_lots": len(lot_ids),
        "chain_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        "lot_head": _lot_head(events, lot_id),
        "checkpoint": proven,
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


def _lot_head(events: list[Row], lot_id: UUID) -> Row | None:
    """The newest of the events that name the lot itself."""
    own = [ev for ev in events if lot_id in (ev.get("lot_ids") or [])]
    newest = max(own, key=lambda ev: ev["seq"], default=None)
    return {"seq": newest["seq"], "hash": newest["hash"]} if newest else None


def _known_checkpoints(
    conn: DbConn, keys: KeyRing, coop: UUID, kept: Row | None
) -> tuple[list[tuple[str, Row]], list[Row]]:
    """The checkpoints to hold the chain to, validly signed ([(source, body)]), and the
    problems of those that are not."""
    problems: list[Row] = []
    inconsistent = checkpoints.observe(conn, keys, coop)  # advances the witness if it may
    if inconsistent is not None:
        problems.append({"seq": None, "kind": "checkpoint", **inconsistent})
    found: list[tuple[str, Row]] = []
    for source, cp in (
        ("stored", checkpoints.latest(conn, coop)),
        ("witness", checkpoints.witnessed(keys, coop)),
        ("kept", kept),
    ):
        if cp is None:
            continue
        reason = checkpoints.signature_problem(keys, cp)
        if reason is None and str(cp["body"].get("cooperative_id")) != str(coop):
            reason = "it is a checkpoint of another cooperative's chain"
        if reason is not None:
            problems.append(
                {
                    "seq": None,
                    "kind": "checkpoint",
                    "problem": "checkpoint_invalid",
                    "detail": f"the {source} checkpoint is not valid: {reason}",
                }
            )
            continue
        found.append((source, cp["body"]))
    return found, problems


def _check_checkpoints(
    conn: DbConn, keys: KeyRing, coop: UUID, events: list[Row], kept: Row | None
) -> tuple[Row | None, list[Row]]:
    """Does the chain still hold every event each known checkpoint held, and are the lot's
    events (as recomputed from their content) the ones the checkpoints committed to?"""
    known, problems = _known_checkpoints(conn, keys, coop, kept)
    head = q.one(conn, SQL["chain_head"], {"cooperative_id": coop})
    size_now = head["position"] + 1 if head else 0
    proven: Row | None = None
    seen: set[tuple[int, str]] = set()
    for source, body in sorted(known, key=lambda sb: -int(sb[1]["tree_size"])):
        size = int(body["tree_size"])
        if (size, body["root_hash"]) in seen:
            continue
        seen.add((size, body["root_hash"]))
        if size > size_now:
            ends = f"seq {head['seq']}" if head else "nothing"
            problems.append(
                {
                    "seq": body.get("head_seq"),
                    "kind": "checkpoint",
                    "problem": "chain_truncated",
                    "detail": f"the {source} checkpoint of {body.get('issued_at')} holds"
                    f" {size} events up to seq {body.get('head_seq')}; the chain now holds"
                    f" {size_now}, ending at {ends}: {size - size_now} event(s) are missing",
                }
            )
            continue
        root = bytes.fromhex(body["root_hash"])
        held = [ev for ev in events if ev["position"] < size]
        try:  # the nodes of all the events' proofs, in one query
            proofs = merkle_store.inclusion_proofs(
                conn, coop, [ev["position"] for ev in held], size
            )
        except CoffeetraceError:
            proofs = {}  # the stored tree lost its nodes: no proof, so not proven
        for ev in held:
            leaf = merkle.leaf_hash(bytes.fromhex(_recomputed(ev)))
            proof = proofs.get(ev["position"], [])
            if not merkle.verify_inclusion(ev["position"], size, leaf, proof, root):
                problems.append(
                    _problem(
                        ev,
                        "not_in_checkpoint",
                        f"event {ev['seq']} ({ev['kind']}) is not the event the {source}"
                        f" checkpoint of {body.get('issued_at')} holds at position"
                        f" {ev['position']}: the chain was rewritten",
                    )
                )
        if proven is None:
            proven = {
                "tree_size": size,
                "root_hash": body["root_hash"],
                "issued_at": body.get("issued_at"),
                "source": source,
            }
    return proven, problems


def _check_rows(
    conn: DbConn,
    lot_ids: list[UUID],
    lot_rows: list[Row],
    events: list[Row],
    harvest_rows: dict[UUID, Row],
    leaves: dict[UUID, bytes],
) -> list[Row]:
    """Do the lot, harvest and transformation rows still say what their events said?
    `harvest_rows`: the harvest_events rows by id; `leaves`: their leaves, where known."""
    lots = {r["id"]: r for r in lot_rows}
    by_seq = {ev["seq"]: ev for ev in events}
    created, steps = _events_by_subject(events)
    harvests: dict[str, dict[str, Row]] = {}
    for r in q.rows(conn, SQL["lot_harvests_for_lots"], {"lot_ids": lot_ids}):
        h = harvest_rows.get(r["harvest_id"])
        leaf = leaves.get(r["harvest_id"]) if h is not None else None
        if h is not None and leaf is None:
            leaf = records.harvest_leaf(h)
        harvests.setdefault(str(r["lot_id"]), {})[str(r["harvest_id"])] = {
            **r,
            "leaf": leaf,
        }
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
    harvests: dict[str, dict[str, Row]],
) -> list[Row]:
    """A lot built from harvests against its lot_created event: the lot row, and each
    input's kilograms, tree and harvest record (its leaf, pinned when the lot was built)."""
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
    problems = []
    diffs = _compare_lot(event, lot)
    if diffs:
        problems.append(
            _problem(
                event,
                "row_mismatch",
                f"lot {lot['code']} no longer matches event {event['seq']} (lot_created): "
                + "; ".join(diffs),
                ("lot", lot["id"]),
            )
        )
    stored = harvests.get(lid, {})
    recorded = {str(entry[0]): entry for entry in event["payload"].get("harvests", [])}
    for hid in sorted(set(recorded) | set(stored)):
        what = _harvest_differences(recorded.get(hid), stored.get(hid))
        if what:
            problems.append(
                _problem(
                    event,
                    "row_mismatch",
                    f"harvest {hid} in lot {lot['code']} no longer matches event"
                    f" {event['seq']} (lot_created): {what}",
                    ("harvest", hid),
                )
            )
    return problems


def _harvest_differences(recorded: list[Any] | None, row: Row | None) -> str:
    """What changed in one input harvest of a cherry lot since its lot_created event."""
    if recorded is None:
        return "the lot takes a harvest its event never recorded"
    if row is None:
        return "the event records it, but the lot no longer takes it"
    diffs = []
    if _dec(recorded[1]) != row["kg"]:
        diffs.append(f"kg taken {recorded[1]} became {row['kg']}")
    if len(recorded) >= 4:  # tree and record leaf: lots built since events were signed
        if recorded[2] != str(row["tree_id"]):
            diffs.append(f"lot_harvests tree {recorded[2]} became {row['tree_id']}")
        if row["leaf"] is None:
            diffs.append("the harvest record is gone")
        elif recorded[3] != row["leaf"].hex():
            diffs.append(
                "the harvest record (device, tree, time, kilograms, ripeness or picker) was edited"
            )
    return "; ".join(diffs)


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
    for field in ("step", "place", "place_i18n"):
        if recorded.get(field) != t.get(field):
            diffs.append(f"{field} {recorded.get(field)!r} became {t.get(field)!r}")
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


def verify_chain(
    conn: DbConn, cooperative_id: UUID, *, keys: KeyRing, kept: Row | None = None, batch: int = 5000
) -> Row:
    """Walk a cooperative's whole chain: every hash, link and signature, every ingest batch
    against its records (batches.verify_batch), and the Merkle tree recomputed from the
    events against each known checkpoint (stored, witness, kept).
    Returns {"ok", "checked_events", "chain_head", "problems"} (problems as verify_lot's)."""
    problems: list[Row] = []
    leaves: list[bytes] = []
    prev_hash, prev_seq, after = GENESIS, None, 0
    captured: dict[str, tuple[str, Row]] = {}  # eventID -> (its hash, the capture's event)
    trail: dict[str, tuple[Row, Row]] = {}  # eventID -> (what it made, the capture's event)
    partnerships: dict[str, Row] = {}  # partnership id -> its newest event
    shipment_events: list[Row] = []  # this chain's shipment events (shipment_checks)
    while True:
        rows = q.rows(
            conn,
            SQL["chain_events"],
            {"cooperative_id": cooperative_id, "after": after, "limit": batch},
        )
        if not rows:
            break
        for row in rows:
            recomputed = _recomputed(row)
            if recomputed != row["hash"]:
                problems.append(
                    _problem(row, "hash_mismatch", f"event {row['seq']} ({row['kind']}) was edited")
                )
            if row["prev_hash"] != prev_hash:
                problems.append(
                    _problem(
                        row, "chain_broken", f"event {row['seq']} does not link to seq {prev_seq}"
                    )
                )
            problems.extend(_check_signature(keys, row))
            if row["kind"] == "ingest_batch":
                problems.extend(batches.verify_batch(conn, row["seq"], check_event_hash=False))
            problems.extend(registry_versions.check_version_index(conn, row))
            if row["kind"] == epcis_capture.CHAIN_KIND:
                for item in (row["payload"] or {}).get("events") or []:
                    captured[str(item.get("eventID"))] = (str(item.get("hash")), row)
                    if isinstance(item.get("trail"), dict):  # epcis_trail.py
                        trail[str(item.get("eventID"))] = (item["trail"], row)
            elif row["kind"] in shipment_checks.KINDS:
                shipment_events.append(row)
            elif row["kind"] in PARTNERSHIP_KINDS:
                partnerships[str((row["payload"] or {}).get("partnership_id"))] = row
            leaves.append(merkle.leaf_hash(bytes.fromhex(recomputed)))
            prev_hash, prev_seq, after = row["hash"], row["seq"], row["seq"]
    problems.extend(_check_captured_events(conn, cooperative_id, captured, batch))
    problems.extend(epcis_trail.check_chain(conn, cooperative_id, trail, batch))
    problems.extend(_check_partnerships(conn, cooperative_id, partnerships))
    problems.extend(shipment_checks.check_chain(conn, cooperative_id, shipment_events))
    problems.extend(external_lots.check_chain(conn, cooperative_id))
    problems.extend(eudr_evidence.verify_screenings(conn, cooperative_id))
    problems.extend(dds_references.check_chain(conn, cooperative_id))
    known, cp_problems = _known_checkpoints(conn, keys, cooperative_id, kept)
    problems.extend(cp_problems)
    for source, body in known:
        size = int(body["tree_size"])
        if size > len(leaves):
            problems.append(
                {
                    "seq": body.get("head_seq"),
                    "kind": "checkpoint",
                    "problem": "chain_truncated",
                    "detail": f"the {source} checkpoint holds {size} events up to seq"
                    f" {body.get('head_seq')}; the chain holds {len(leaves)} ending at seq"
                    f" {prev_seq}",
                }
            )
        elif merkle.root(leaves[:size]).hex() != body["root_hash"]:
            problems.append(
                {
                    "seq": None,
                    "kind": "checkpoint",
                    "problem": "not_in_checkpoint",
                    "detail": f"the chain's first {size} events do not give the {source}"
                    f" checkpoint's root: the chain was rewritten before position {size}",
                }
            )
    return {
        "ok": not problems,
        "checked_events": len(leaves),
        "chain_head": {"seq": prev_seq, "hash": prev_hash} if prev_seq else None,
        "problems": problems,
    }


def _epcis_differences(row: Row, recorded_hash: str) -> list[str]:
    """How a captured event's row differs from what its capture recorded: the hash the
    chain holds, the hash its stored JSON gives (CBV 2.0, with the prefixes of its own
    @context, where capture keeps the document's namespaces), and the columns queries
    filter on, which must be those the JSON gives."""
    event = row["event"] if isinstance(row["event"], dict) else {}
    out = []
    if row["hash"] != recorded_hash:
        out.append(f"hash {row['hash']} (recorded {recorded_hash})")
    prefixes = epcis_hash.context_prefixes(event.get("@context"))
    try:
        content = epcis_hash.event_hash(event, prefixes)
    except Exception as exc:  # an edit may leave JSON the hash cannot read
        content = f"(unreadable: {type(exc).__name__})"
    if content != recorded_hash:
        out.append("its JSON (the event hash it gives is not the recorded one)")
    if event.get("eventID") != row["event_id"]:
        out.append(f"eventID in the JSON {str(event.get('eventID'))[:80]!r}")
    try:
        derived = epcis_capture.event_row(event, prefixes, recorded_hash)
        at = epcis_hash.parse_time(str(event.get("eventTime")))
    except Exception:  # unreadable JSON is named above
        return out
    if at != row["event_time"]:
        out.append("event_time")
    out += [column for column in EPCIS_COLUMNS if _column(row[column]) != _column(derived[column])]
    return out


def _column(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def _check_captured_events(
    conn: DbConn, cooperative_id: UUID, recorded: dict[str, tuple[str, Row]], batch: int
) -> list[Row]:
    """Each captured event's row against its capture's chain event: edited, deleted, or
    inserted behind the application's back (a captured row no capture recorded)."""
    problems: list[Row] = []
    seen: set[str] = set()

    def check(row: Row) -> None:
        event_id = row["event_id"]
        entry = recorded.get(event_id)
        record = ("epcis_event", event_id)
        if entry is None:
            problems.append(_problem(None, "epcis_event_unrecorded",
                f"captured EPCIS event {event_id[:120]!r} is in no capture's chain event:"
                " it was inserted behind the application's back", record))  # fmt: skip
            return
        seen.add(event_id)
        differences = _epcis_differences(row, entry[0])
        if differences:
            event = entry[1]
            problems.append(_problem(event, "epcis_event_edited",
                f"captured EPCIS event {event_id[:120]!r} differs from what event"
                f" {event['seq']} ({event['kind']}) recorded: {', '.join(differences)}",
                record))  # fmt: skip

    after = 0
    while True:
        rows = q.rows(conn, RECORDS_SQL["verify_captured_epcis_events"], {
            "cooperative_id": cooperative_id, "after": after, "limit": batch})  # fmt: skip
        if not rows:
            break
        for row in rows:
            after = row["id"]
            check(row)
    unseen = [event_id for event_id in recorded if event_id not in seen]
    for start in range(0, len(unseen), batch):
        params = {"cooperative_id": cooperative_id, "event_ids": unseen[start : start + batch]}
        for row in q.rows(conn, RECORDS_SQL["verify_epcis_events_by_ids"], params):
            check(row)
    for event_id, (_, event) in recorded.items():
        if event_id not in seen:
            problems.append(_problem(event, "epcis_event_missing",
                f"captured EPCIS event {event_id[:120]!r}, recorded by event {event['seq']}"
                f" ({event['kind']}), is not in the store", ("epcis_event", event_id)))  # fmt: skip
    return problems


def _partnership_differences(row: Row, payload: Row, occurred_at: Any) -> list[str]:
    out = []
    if row["status"] != payload.get("status"):
        out.append(f"status {row['status']} (recorded {payload.get('status')})")
    if list(row["scopes"]) != list(payload.get("scopes") or []):
        out.append(f"scopes {list(row['scopes'])} (recorded {payload.get('scopes')})")
    for side in ("proposer", "invitee"):
        if str(row[f"{side}_id"]) != str((payload.get(side) or {}).get("id")):
            out.append(side)
    column = STATUS_TIME.get(str(payload.get("status")))
    if column is not None and row[column] != occurred_at:
        out.append(f"{column} {iso_utc(row[column]) if row[column] else None}")
    if payload.get("status") == "ended" and row["ended_by_code"] != payload.get("by"):
        out.append(f"ended_by {row['ended_by_code']} (recorded {payload.get('by')})")
    return out


def _check_partnerships(conn: DbConn, cooperative_id: UUID, newest: dict[str, Row]) -> list[Row]:
    """Each partnership the cooperative is a party to against the newest of its events in
    the cooperative's chain (every change is one, in both parties' chains)."""
    problems: list[Row] = []
    found = q.rows(conn, RECORDS_SQL["verify_partnerships_of"], {"cooperative_id": cooperative_id})
    rows = {str(r["id"]): r for r in found}
    for partnership_id, row in rows.items():
        record = ("partnership", partnership_id)
        event = newest.get(partnership_id)
        if event is None:
            problems.append(_problem(None, "partnership_unrecorded",
                f"partnership {partnership_id} is in no event of this chain: it was"
                " written behind the application's back", record))  # fmt: skip
            continue
        differences = _partnership_differences(row, event["payload"] or {}, event["occurred_at"])
        if differences:
            problems.append(_problem(event, "partnership_edited",
                f"partnership {partnership_id} differs from what event {event['seq']}"
                f" ({event['kind']}) recorded: {', '.join(differences)}", record))  # fmt: skip
    for partnership_id, event in newest.items():
        if partnership_id not in rows:
            problems.append(_problem(event, "partnership_missing",
                f"partnership {partnership_id}, recorded by event {event['seq']}"
                f" ({event['kind']}), is not in the store",
                ("partnership", partnership_id)))  # fmt: skip
    return problems
