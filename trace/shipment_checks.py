"""Shipment rows against their chain events: what verification calls to hold shipments,
their lines, transport events and receipts to what the parties' chains recorded.

Every change of a shipment is a signed event (shipments.py): `shipment_sent` in the
sender's chain, `shipment_transport` in the recorder's, and `shipment_accepted` or
`shipment_rejected` in both. Each event's payload is rebuilt here from the rows as the
database holds them now, with the same functions that built it (shipments.sent_payload,
transport_payload, outcome_payload), and compared with the stored payload: a row edited,
inserted or deleted behind the application's back (psql) no longer gives it. The link of
the receipt to the sender's chain is walked too: the sender's `shipment_sent` it names
must still be there, hash to its recorded hash and be this shipment's.

Problems have verification's shape (seq, kind, problem, detail, record) and name the
organisation whose chain or record fails ("organisation": {"id", "code"}). Problems:
"shipment_edited" (a row no longer gives what its event recorded), "shipment_unrecorded"
(a row, or a state of one, that no event of that chain records), "shipment_missing" (an
event of a shipment that is not in the store), "shipment_link_broken" (the receipt's link
to the sender's chain does not hold).

Two entry points, for verification.py to call (it is not edited here):
- `check_chain(conn, cooperative_id, events)`: every shipment the organisation sent or
  receives against the shipment events of its own chain (the whole-chain audit);
- `check_lots(conn, lot_ids)`: the shipments that took or made any of the lots (a lot's
  verification), against the events their rows point at, in both chains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace import shipments, statements
from coffeetrace.trace.chain import event_hash
from coffeetrace.trace.jsonutil import canonical_json

SQL = load_queries("coffeetrace.trace", "shipment_checks.sql")
SHIPMENTS_SQL = load_queries("coffeetrace.trace", "shipments.sql")

KINDS: Final = tuple(shipments.EVENT_KINDS.values())
OUTCOME_KINDS: Final = (shipments.EVENT_KINDS["accepted"], shipments.EVENT_KINDS["rejected"])
MAX_DIFFERENCES: Final = 10

Key = tuple[str, ...]  # ("sent",), ("transport", id), ("outcome",)


def check_chain(
    conn: DbConn, cooperative_id: UUID, events: Iterable[Row] | None = None
) -> list[Row]:
    """Every shipment the organisation sent or receives against the shipment events of
    its own chain; `events`: those events (rows of trace_events whose kind is in `KINDS`),
    when the caller read them walking the chain; read here otherwise. Also names the
    events of shipments that are no longer in the store."""
    if events is None:
        events = q.rows(
            conn,
            SQL["shipment_events_of_chain"],
            {"cooperative_id": cooperative_id, "kinds": list(KINDS)},
        )
    mine = [ev for ev in events if ev["kind"] in KINDS]
    ids = [
        r["id"]
        for r in q.rows(
            conn, SQL["shipment_ids_of_organisation"], {"cooperative_id": cooperative_id}
        )
    ]
    loaded = _load(conn, ids)
    problems = _compare(conn, loaded, {cooperative_id: mine}, {cooperative_id})
    known = {str(s["id"]) for s, _, _ in loaded}
    codes = _codes(conn, [cooperative_id])
    for ev in mine:
        shipment_id = str((ev["payload"] or {}).get("shipment_id"))
        if shipment_id not in known:
            problems.append(
                _problem(
                    ev,
                    "shipment_missing",
                    f"shipment {shipment_id[:40]}, recorded by event {ev['seq']} ({ev['kind']}),"
                    " is not in the store",
                    ("shipment", shipment_id),
                    cooperative_id,
                    codes.get(cooperative_id),
                )
            )
    return problems


def check_lots(conn: DbConn, lot_ids: Sequence[UUID]) -> list[Row]:
    """The shipments that took kg of any of the lots or made any of them, against the
    events of both parties that their rows point at (a lot's verification: the chains the
    lot's history crosses)."""
    ids = [r["id"] for r in q.rows(conn, SQL["shipment_ids_of_lots"], {"lot_ids": list(lot_ids)})]
    loaded = _load(conn, ids)
    seqs = sorted(
        {
            seq
            for s, _, moves in loaded
            for seq in (
                s["sent_event_seq"],
                s["outcome_event_seq"],
                s["sender_outcome_event_seq"],
                *(m["event_seq"] for m in moves),
            )
            if seq is not None
        }
    )
    by_org: dict[UUID, list[Row]] = {}
    for ev in q.rows(conn, SQL["shipment_events_at"], {"seqs": seqs}):
        if ev["kind"] in KINDS:
            by_org.setdefault(ev["cooperative_id"], []).append(ev)
    parties = {p for s, _, _ in loaded for p in (s["sender_id"], s["receiver_id"])}
    return _compare(conn, loaded, by_org, parties)


# --- comparing ------------------------------------------------------------------------
def _load(conn: DbConn, ids: list[UUID]) -> list[tuple[Row, list[Row], list[Row]]]:
    """Each shipment's row, lines and transport events."""
    if not ids:
        return []
    lines: dict[UUID, list[Row]] = {}
    for line in q.rows(conn, SHIPMENTS_SQL["shipment_lines_of"], {"ids": ids}):
        lines.setdefault(line["shipment_id"], []).append(line)
    moves: dict[UUID, list[Row]] = {}
    for t in q.rows(conn, SHIPMENTS_SQL["shipment_transport_of"], {"ids": ids}):
        moves.setdefault(t["shipment_id"], []).append(t)
    return [
        (s, lines.get(s["id"], []), moves.get(s["id"], []))
        for s in q.rows(conn, SQL["shipment_rows_by_ids"], {"ids": ids})
    ]


def _codes(conn: DbConn, ids: Iterable[UUID]) -> dict[UUID, str]:
    rows = q.rows(conn, SQL["organisation_codes"], {"ids": list(ids)})
    return {r["id"]: r["code"] for r in rows}


def _problem(
    event: Row | None,
    problem: str,
    detail: str,
    record: tuple[str, Any],
    organisation: UUID,
    code: str | None,
) -> Row:
    return {
        "seq": event["seq"] if event else None,
        "kind": event["kind"] if event else None,
        "problem": problem,
        "detail": detail,
        "record": {"type": record[0], "id": str(record[1])},
        "organisation": {"id": str(organisation), "code": code},
    }


def _key(ev: Row) -> Key:
    payload = ev["payload"] if isinstance(ev["payload"], dict) else {}
    if ev["kind"] == shipments.EVENT_KINDS["sent"]:
        return ("sent",)
    if ev["kind"] == shipments.EVENT_KINDS["transport"]:
        return ("transport", str(payload.get("transport_event_id")))
    return ("outcome",)


def _expected(
    conn: DbConn, s: Row, lines: list[Row], moves: list[Row], organisation: UUID
) -> dict[Key, Row]:
    """The events the rows say `organisation`'s chain holds of the shipment: {key:
    {"kind", "payload", "occurred_at", "lot_ids", "record"}}."""
    out: dict[Key, Row] = {}
    record = ("shipment", s["id"])
    if organisation == s["sender_id"]:
        out[("sent",)] = {
            "kind": shipments.EVENT_KINDS["sent"],
            "payload": shipments.sent_payload(s, lines),
            "occurred_at": s["departed_at"],
            "lot_ids": {line["lot_id"] for line in lines},
            "record": record,
        }
    for t in moves:
        if t["recorded_by"] == organisation:
            out[("transport", str(t["id"]))] = {
                "kind": shipments.EVENT_KINDS["transport"],
                "payload": shipments.transport_payload(s, t),
                "occurred_at": t["occurred_at"],
                "lot_ids": set(),
                "record": ("shipment_transport_event", t["id"]),
            }
    if s["status"] in ("accepted", "rejected"):
        ours = organisation == s["receiver_id"]
        out[("outcome",)] = {
            "kind": shipments.EVENT_KINDS[s["status"]],
            "payload": shipments.outcome_payload(
                s, lines, shipments.event_at(conn, s["sent_event_seq"])
            ),
            "occurred_at": s["received_at"] if s["status"] == "accepted" else s["rejected_at"],
            "lot_ids": {line["receiver_lot_id"] for line in lines if line["receiver_lot_id"]}
            if ours
            else set(),
            "record": record,
        }
    return out


def _differences(expected: Row, ev: Row) -> list[str]:
    out = []
    if ev["kind"] != expected["kind"]:
        out.append(f"the row says {expected['kind']}, the chain {ev['kind']}")
    if ev["occurred_at"] != expected["occurred_at"]:
        out.append(f"its time {expected['occurred_at']} (recorded {ev['occurred_at']})")
    if set(ev["lot_ids"] or []) != expected["lot_ids"]:
        out.append("the lots it names")
    if canonical_json(ev["payload"]) != canonical_json(expected["payload"]):
        out += statements.differences(ev["payload"], expected["payload"])[:MAX_DIFFERENCES]
    return out


def _compare(
    conn: DbConn,
    loaded: list[tuple[Row, list[Row], list[Row]]],
    events: dict[UUID, list[Row]],
    scope: set[UUID],
) -> list[Row]:
    """Each loaded shipment against the events of each party in `scope` (`events`: the
    shipment events of each organisation's chain that are to be held to the rows)."""
    found: dict[tuple[UUID, str], dict[Key, Row]] = {}
    for organisation, rows in events.items():
        for ev in rows:
            shipment_id = str((ev["payload"] or {}).get("shipment_id"))
            found.setdefault((organisation, shipment_id), {})[_key(ev)] = ev
    problems: list[Row] = []
    for s, lines, moves in loaded:
        for organisation, code in (
            (s["sender_id"], s["sender_code"]),
            (s["receiver_id"], s["receiver_code"]),
        ):
            if organisation not in scope:
                continue
            have = found.get((organisation, str(s["id"])), {})
            want = _expected(conn, s, lines, moves, organisation)
            for key, expected in want.items():
                stored = have.get(key)
                what = f"{expected['record'][0].replace('_', ' ')} {expected['record'][1]}"
                if stored is None:
                    problems.append(
                        _problem(
                            None,
                            "shipment_unrecorded",
                            f"{what} ({expected['kind']}) is in no event of {code}'s chain: it was"
                            " written behind the application's back",
                            expected["record"],
                            organisation,
                            code,
                        )
                    )
                    continue
                diffs = _differences(expected, stored)
                if diffs:
                    problems.append(
                        _problem(
                            stored,
                            "shipment_edited",
                            f"{what} differs from what event {stored['seq']}"
                            f" ({stored['kind']}) of {code}'s chain recorded: {'; '.join(diffs)}",
                            expected["record"],
                            organisation,
                            code,
                        )
                    )
            for key, ev in have.items():
                if key not in want:
                    problems.append(
                        _problem(
                            ev,
                            "shipment_edited",
                            f"shipment {s['id']} is {s['status']} in the store, but event"
                            f" {ev['seq']} ({ev['kind']}) of {code}'s chain recorded more of it",
                            ("shipment", s["id"]),
                            organisation,
                            code,
                        )
                    )
        if s["status"] != "in_transit" and scope & {s["sender_id"], s["receiver_id"]}:
            problems.extend(_check_link(conn, s))
    return problems


def _check_link(conn: DbConn, s: Row) -> list[Row]:
    """The receipt's link into the sender's chain: the sender's shipment_sent that the
    row points at is there, is this shipment's, and hashes to its stored hash."""
    record = ("shipment", s["id"])
    seq = s["sent_event_seq"]
    rows = q.rows(conn, SQL["shipment_events_at"], {"seqs": [seq] if seq is not None else []})
    ev = rows[0] if rows else None
    why = None
    if ev is None:
        why = f"the sender's shipment_sent event (seq {seq}) is not in the store"
    elif ev["cooperative_id"] != s["sender_id"] or ev["kind"] != shipments.EVENT_KINDS["sent"]:
        why = f"event {ev['seq']} ({ev['kind']}) is not a shipment_sent of the sender's chain"
    elif str((ev["payload"] or {}).get("shipment_id")) != str(s["id"]):
        why = f"event {ev['seq']} (shipment_sent) is another shipment's"
    else:
        recomputed = event_hash(
            seq=ev["seq"],
            cooperative_id=ev["cooperative_id"],
            kind=ev["kind"],
            lot_ids=ev["lot_ids"],
            occurred_at=ev["occurred_at"],
            payload=ev["payload"],
            prev_hash=ev["prev_hash"],
        )
        if recomputed != ev["hash"]:
            why = (
                f"event {ev['seq']} (shipment_sent) was edited: its content no longer gives"
                " the hash the receipt recorded"
            )
    if why is None:
        return []
    return [
        _problem(
            ev,
            "shipment_link_broken",
            f"the receipt of shipment {s['id']} links to the sender's chain, but {why}",
            record,
            s["sender_id"],
            s["sender_code"],
        )
    ]
