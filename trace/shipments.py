"""Shipments and receipts between trading partners.

The sender ships kilograms of one or more of its own lots to an active partner
(`partners.are_partners`): the kg leave its lots at once, under the lots' row locks and by
the rules a processing step takes them with (processing.sql's `lock_input_lots` and
`consume_lot`), so no lot is ever shipped beyond what it has left, whatever runs at the
same time. While in transit either party follows the shipment with transport events
(departure port, arrival port, ...). The receiver then

- accepts it with what it weighed and measured: each of its new lots is made by a
  "receiving" transformation of the receiver whose inputs are the shipped kg of the
  sender's lots, so the genealogy (genealogy.py) walks from the receiver's lot to the
  sender's lots, farms, plots and trees, and forward again, with no rule of its own; a
  loss beyond the tolerance (COFFEETRACE_SHIPMENT_LOSS_TOLERANCE_PCT) is flagged with its
  figures, a gain beyond the step's yield (receiving: 1.0) is refused; or
- rejects it with a reason: the kg return to the sender's lots.

Accepted or rejected, a shipment changes no more, and the sender's kg in it are the
receiver's (its receiving transformation pins them): the sender cannot take them back or
ship them again.

Chain events, each signed by the organisation whose chain holds it. In the order of the
organisations' ids when a change reaches both chains (as partners.py does), so two such
transactions never wait for each other in a cycle; lot rows are always locked before
chains, as processing does.

- `shipment_sent` (sender's chain, naming the shipped lots): the whole shipment.
- `shipment_transport` (the recorder's chain): one transport event.
- `shipment_accepted` (the receiver's chain, naming its new lots, and a copy in the
  sender's, naming none): the receipt, with `sent_event` = {cooperative_id, seq, hash} of
  the sender's `shipment_sent`, which links the two chains; then one `transformation`
  event (step receiving) per new lot in the receiver's chain, carrying
  `shipment: {id, accepted_event: {seq, hash}}`.
- `shipment_rejected` (both chains, naming no lots): the reason and the kg returned.

The payloads are built from the rows as the database holds them (`sent_payload`,
`transport_payload`, `outcome_payload`), so that shipment_checks.py can rebuild them and
name any row edited behind the application's back. Every function takes an open
connection (the caller owns the transaction); an organisation is named by its id (its
cooperative_id).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, get_args
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.settings import DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT
from coffeetrace.sql import load_queries
from coffeetrace.trace import organisations, partners, statements
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event, lock_chain
from coffeetrace.trace.jsonutil import iso_utc, jsonable
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.lots import KG, LOT_KINDS, insert_lot, lot_payload, to_kg
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules

SQL = load_queries("coffeetrace.trace", "shipments.sql")
# the lots' locks and consumption, and the transformation rows, as processing writes them
STEPS_SQL = load_queries("coffeetrace.trace", "processing.sql")

log = logging.getLogger(__name__)

Status = Literal["in_transit", "accepted", "rejected"]
STATUSES: Final = get_args(Status)
Direction = Literal["in", "out"]
DIRECTIONS: Final = get_args(Direction)
TransportKind = Literal[
    "departure_port",
    "transshipment",
    "arrival_port",
    "customs_cleared",
    "inland_transport",
    "other",
]
TRANSPORT_KINDS: Final = get_args(TransportKind)
# the kinds of document a shipment may reference (the API's enum too)
DocumentType = Literal[
    "bill_of_lading",
    "sea_waybill",
    "commercial_invoice",
    "packing_list",
    "weight_note",
    "quality_certificate",
    "phytosanitary_certificate",
    "certificate_of_origin",
    "fumigation_certificate",
    "due_diligence_statement",
    "contract",
    "other",
]
DOCUMENT_TYPES: Final = get_args(DocumentType)
# CBV 2.0 business transaction types (an EPCIS bizTransaction's `type`)
SaleType = Literal[
    "bol",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
]
SALE_TYPES: Final = get_args(SaleType)
EVENT_KINDS: Final = {
    "sent": "shipment_sent",
    "transport": "shipment_transport",
    "accepted": "shipment_accepted",
    "rejected": "shipment_rejected",
}
RECEIVING: Final = "receiving"
MAX_LINES: Final = 500
MAX_DOCUMENTS: Final = 50
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CONTAINER = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
PCT = Decimal("0.001")
HUNDRED = Decimal(100)


# --- checks of what is given ------------------------------------------------------------
def container_check_digit(owner_serial: str) -> int:
    """ISO 6346's check digit of the first 10 characters of a container number."""
    values: dict[str, int] = {}
    n = 10
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if n % 11 == 0:  # 11, 22, 33 are skipped
            n += 1
        values[letter] = n
        n += 1
    total = sum(
        (values[c] if c.isalpha() else int(c)) << i for i, c in enumerate(owner_serial[:10])
    )
    return total % 11 % 10


def check_container(container: str) -> str:
    """`container` when it is an ISO 6346 container number (MSKU1234565: owner code,
    category U/J/Z, six digits and the check digit); ValidationFailed saying why."""
    if not isinstance(container, str) or not CONTAINER.fullmatch(container):
        raise ValidationFailed(
            f"container {str(container)[:20]!r} is not an ISO 6346 number: three capital"
            " letters of the owner, U, J or Z, six digits and the check digit (CSQU3054383)",
            field="container",
        )
    expected = container_check_digit(container)
    if int(container[10]) != expected:
        raise ValidationFailed(
            f"container {container} has a wrong check digit (expected {expected}, got"
            f" {container[10]}); check the number, a character was probably mistyped",
            field="container",
        )
    return container


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValidationFailed(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise ValidationFailed(
            f"{field} must be 1 to {limit} characters, not blank, without NUL", field=field
        )
    return value


def _words(value: Any, field: str, limit: int) -> str:
    """A required text (see _text)."""
    text = _text(value, field, limit, required=True)
    assert text is not None  # required: _text refused None
    return text


def check_documents(documents: Sequence[Mapping[str, Any]] | None) -> list[Row]:
    """Document references as stored: [{"type", "number", "sha256", "url"?}], the SHA-256
    of each document's file in lower-case hex."""
    docs = list(documents or [])
    if len(docs) > MAX_DOCUMENTS:
        raise ValidationFailed(f"at most {MAX_DOCUMENTS} documents", field="documents")
    out = []
    for doc in docs:
        kind = doc.get("type")
        if kind not in DOCUMENT_TYPES:
            raise ValidationFailed(
                f"document type {str(kind)[:40]!r} is none of {', '.join(DOCUMENT_TYPES)}",
                field="documents.type",
            )
        number = _text(doc.get("number"), "documents.number", 100, required=True)
        digest = doc.get("sha256")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ValidationFailed(
                f"document {number}: sha256 must be the SHA-256 of the document's file, 64"
                " lower-case hex digits (sha256sum FILE)",
                field="documents.sha256",
            )
        entry: Row = {"type": kind, "number": number, "sha256": digest}
        url = _text(doc.get("url"), "documents.url", 2000)
        if url is not None:
            if not url.startswith(("https://", "http://")):
                raise ValidationFailed("a document's url must be http(s)", field="documents.url")
            entry["url"] = url
        out.append(entry)
    return out


def check_sale(sale: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """The sale reference's (CBV business transaction type, id), or (None, None)."""
    if sale is None:
        return None, None
    kind = sale.get("type")
    if kind not in SALE_TYPES:
        raise ValidationFailed(
            f"sale_reference type {str(kind)[:20]!r} is no CBV business transaction type"
            f" ({', '.join(SALE_TYPES)})",
            field="sale_reference.type",
        )
    return kind, _text(sale.get("id"), "sale_reference.id", 200, required=True)


def _check_time(name: str, at: datetime, rules: TraceRules, *, not_before: Row | None) -> None:
    """`at` has a time zone, is not in the future (beyond the clock skew allowed) and not
    before not_before = {"at", "what"}."""
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValidationFailed(f"{name} needs a time zone", field=name)
    now = datetime.now(UTC)
    if at > now + timedelta(seconds=rules.step_clock_skew_s):
        raise RuleViolation(
            "shipment_in_future",
            f"{name} {at.isoformat()} is in the future (now is"
            f" {now.isoformat(timespec='seconds')}); record it once it has happened",
            field=name,
            now=now.isoformat(timespec="seconds"),
        )
    if not_before is not None and at < not_before["at"]:
        raise RuleViolation(
            "shipment_out_of_order",
            f"{name} {at.isoformat()} is before {not_before['what']}"
            f" ({not_before['at'].isoformat()})",
            field=name,
            not_before=not_before["at"].isoformat(),
        )


def _lines(lines: Sequence[tuple[UUID, Any]]) -> dict[UUID, Decimal]:
    if not lines:
        raise RuleViolation("no_lines", "a shipment takes kg of at least one lot")
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"a shipment has at most {MAX_LINES} lines", field="lines")
    out: dict[UUID, Decimal] = {}
    for lot_id, kg in lines:
        lot = UUID(str(lot_id))
        amount = to_kg(kg, field="lines.kg")
        if amount <= 0:
            raise RuleViolation(
                "positive_kg", "a line ships more than 0 kg", lot_id=str(lot), kg=str(amount)
            )
        if lot in out:
            raise RuleViolation(
                "duplicate_line", "a lot appears twice among the lines", lot_id=str(lot)
            )
        out[lot] = amount
    return out


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole * HUNDRED).quantize(PCT)


# --- the payloads of the events, from the rows ---------------------------------------
def _party(s: Row, side: str) -> Row:
    return {"id": str(s[f"{side}_id"]), "code": s[f"{side}_code"]}


def sent_payload(s: Row, lines: Sequence[Row]) -> Row:
    """What `shipment_sent` records: the shipment row (shipment_row) and its lines
    (shipment_lines_of)."""
    return {
        "shipment_id": str(s["id"]),
        "sender": _party(s, "sender"),
        "receiver": _party(s, "receiver"),
        "departed_at": iso_utc(s["departed_at"]),
        "departure_place": s["departure_place"],
        "carrier": s["carrier"],
        "vehicle": s["vehicle"],
        "container": s["container"],
        "seal": s["seal"],
        "documents": s["documents"],
        "sale_reference": {"type": s["sale_type"], "id": s["sale_id"]}
        if s["sale_type"] is not None
        else None,
        "shipped_kg": str(s["shipped_kg"]),
        "lines": [
            {
                "line": line["line_no"],
                "lot_id": str(line["lot_id"]),
                "public_id": line["public_id"],
                "code": line["code"],
                "kind": line["kind"],
                "kg": str(line["kg"]),
            }
            for line in lines
        ],
    }


def transport_payload(s: Row, t: Row) -> Row:
    """What `shipment_transport` records of one transport event (shipment_transport_of)."""
    return {
        "shipment_id": str(s["id"]),
        "transport_event_id": str(t["id"]),
        "kind": t["kind"],
        "occurred_at": iso_utc(t["occurred_at"]),
        "place": t["place"],
        "note": t["note"],
        "by": t["recorded_by_code"],
    }


def line_loss(line: Row) -> tuple[Decimal, Decimal]:
    """(kg lost, percent of the shipped kg) of a received line."""
    lost = (line["kg"] - line["received_kg"]).quantize(KG)
    return lost, _pct(lost, line["kg"])


def outcome_payload(s: Row, lines: Sequence[Row], sent_event: Row | None) -> Row:
    """What `shipment_accepted` or `shipment_rejected` records (the same in both chains);
    `sent_event`: the sender's shipment_sent event row {"cooperative_id", "seq", "hash"}."""
    out: Row = {
        "shipment_id": str(s["id"]),
        "status": s["status"],
        "sender": _party(s, "sender"),
        "receiver": _party(s, "receiver"),
        "sent_event": None
        if sent_event is None
        else {
            "cooperative_id": str(sent_event["cooperative_id"]),
            "seq": sent_event["seq"],
            "hash": sent_event["hash"],
        },
        "by": s["receiver_code"],
    }
    if s["status"] == "accepted":
        lost = (s["shipped_kg"] - s["received_kg"]).quantize(KG)
        out.update(
            received_at=iso_utc(s["received_at"]),
            arrival_place=s["arrival_place"],
            received_kg=str(s["received_kg"]),
            loss_kg=str(lost),
            loss_pct=str(_pct(lost, s["shipped_kg"])),
            loss_tolerance_pct=str(s["loss_tolerance_pct"]),
            loss_flagged=s["loss_flagged"],
            measurements=s["receipt_measurements"],
            documents=s["receipt_documents"],
            lines=[_received_line(line) for line in lines],
        )
    elif s["status"] == "rejected":
        out.update(
            rejected_at=iso_utc(s["rejected_at"]),
            reason=s["reject_reason"],
            returned=[
                {"line": line["line_no"], "lot_id": str(line["lot_id"]), "kg": str(line["kg"])}
                for line in lines
            ],
        )
    return out


def _received_line(line: Row) -> Row:
    received = line["received_kg"] is not None
    lost, pct = line_loss(line) if received else (None, None)
    return {
        "line": line["line_no"],
        "lot_id": str(line["lot_id"]),
        "kg": str(line["kg"]),
        "received_kg": None if not received else str(line["received_kg"]),
        "loss_kg": None if lost is None else str(lost),
        "loss_pct": None if pct is None else str(pct),
        "loss_flagged": line["loss_flagged"],
        "measurements": line["measurements"],
        "receiver_lot": None
        if line["receiver_lot_id"] is None
        else {"id": str(line["receiver_lot_id"]), "public_id": line["receiver_lot_public_id"]},
    }


def rows_of(conn: DbConn, shipment_id: UUID) -> tuple[Row, list[Row], list[Row]]:
    """The shipment row, its lines and its transport events, as the payloads read them."""
    s = q.one(conn, SQL["shipment_row"], {"id": shipment_id})
    if s is None:
        raise NotFound(f"no shipment has the id {shipment_id}", kind="shipment")
    ids = [shipment_id]
    return (
        s,
        q.rows(conn, SQL["shipment_lines_of"], {"ids": ids}),
        q.rows(conn, SQL["shipment_transport_of"], {"ids": ids}),
    )


def event_at(conn: DbConn, seq: int | None) -> Row | None:
    """The stored event {"seq", "cooperative_id", "kind", "hash"} at `seq`, or None."""
    return None if seq is None else q.one(conn, SQL["event_by_seq"], {"seq": seq})


# --- reading ------------------------------------------------------------------------
def get(conn: DbConn, viewer: UUID, shipment_id: UUID) -> Row:
    """The shipment as `viewer` (its sender or receiver) sees it (see `_view`); NotFound
    for anyone else, as when there is none."""
    rows = q.rows(
        conn,
        SQL["shipments_of"],
        {
            "viewer": viewer,
            "direction": None,
            "id": shipment_id,
            "status": None,
            "after": None,
            "limit": 1,
        },
    )
    if not rows:
        raise _not_yours(shipment_id)
    return _views(conn, viewer, rows)[0]


def list_shipments(
    conn: DbConn,
    viewer: UUID,
    *,
    direction: str | None = None,
    status: str | None = None,
    after: UUID | None = None,
    limit: int = 50,
) -> list[Row]:
    """The shipments `viewer` sent ("out") or receives ("in"), or both, by id after
    `after`, as `get` gives them."""
    if direction is not None and direction not in DIRECTIONS:
        raise ValidationFailed(f"direction is {' or '.join(DIRECTIONS)}", field="direction")
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status is one of {', '.join(STATUSES)}", field="status")
    rows = q.rows(
        conn,
        SQL["shipments_of"],
        {
            "viewer": viewer,
            "direction": direction,
            "id": None,
            "status": status,
            "after": after,
            "limit": limit,
        },
    )
    return _views(conn, viewer, rows)


def _views(conn: DbConn, viewer: UUID, rows: list[Row]) -> list[Row]:
    ids = [r["id"] for r in rows]
    lines: dict[UUID, list[Row]] = {}
    for line in q.rows(conn, SQL["shipment_lines_of"], {"ids": ids}):
        lines.setdefault(line["shipment_id"], []).append(line)
    moves: dict[UUID, list[Row]] = {}
    for t in q.rows(conn, SQL["shipment_transport_of"], {"ids": ids}):
        moves.setdefault(t["shipment_id"], []).append(t)
    return [_view(viewer, r, lines.get(r["id"], []), moves.get(r["id"], [])) for r in rows]


def _view(viewer: UUID, s: Row, lines: list[Row], moves: list[Row]) -> Row:
    """{"id", "status", "direction" ("out": the viewer sent it), "sender", "receiver"
    (public profiles), "departed_at", "departure_place", "carrier", "vehicle",
    "container", "seal", "documents", "sale_reference", "shipped_kg", "created_at",
    "lines": [{"line", "lot": {"public_id", "code", "kind", "id" (the sender's only)},
    "kg", "received_kg", "loss_kg", "loss_pct", "loss_flagged", "measurements",
    "receiver_lot": {"public_id", "id" and "code" (the receiver's only)} | None}],
    "transport_events": [{"id", "kind", "occurred_at", "place", "note", "recorded_by"}],
    "receipt": {"received_at", "place", "received_kg", "loss_kg", "loss_pct",
    "loss_tolerance_pct", "loss_flagged", "measurements", "documents"} | None,
    "rejection": {"rejected_at", "reason"} | None}. The other side's internal lot ids and
    codes stay its own."""
    ours = s["sender_id"] == viewer
    shown = []
    for line in lines:
        lot: Row = {"public_id": line["public_id"], "code": line["code"], "kind": line["kind"]}
        if ours:
            lot["id"] = line["lot_id"]
        received = line["received_kg"] is not None
        lost, pct = line_loss(line) if received else (None, None)
        into: Row | None = None
        if line["receiver_lot_id"] is not None:
            into = {"public_id": line["receiver_lot_public_id"]}
            if not ours:
                into.update(id=line["receiver_lot_id"], code=line["receiver_lot_code"])
        shown.append(
            {
                "line": line["line_no"],
                "lot": lot,
                "kg": line["kg"],
                "received_kg": line["received_kg"],
                "loss_kg": lost,
                "loss_pct": pct,
                "loss_flagged": line["loss_flagged"],
                "measurements": line["measurements"],
                "receiver_lot": into,
            }
        )
    receipt = None
    if s["status"] == "accepted":
        lost = (s["shipped_kg"] - s["received_kg"]).quantize(KG)
        receipt = {
            "received_at": s["received_at"],
            "place": s["arrival_place"],
            "received_kg": s["received_kg"],
            "loss_kg": lost,
            "loss_pct": _pct(lost, s["shipped_kg"]),
            "loss_tolerance_pct": s["loss_tolerance_pct"],
            "loss_flagged": s["loss_flagged"],
            "measurements": s["receipt_measurements"],
            "documents": s["receipt_documents"],
        }
    return {
        "id": s["id"],
        "status": s["status"],
        "direction": "out" if ours else "in",
        "sender": s["sender"],
        "receiver": s["receiver"],
        "departed_at": s["departed_at"],
        "departure_place": s["departure_place"],
        "carrier": s["carrier"],
        "vehicle": s["vehicle"],
        "container": s["container"],
        "seal": s["seal"],
        "documents": s["documents"],
        "sale_reference": {"type": s["sale_type"], "id": s["sale_id"]}
        if s["sale_type"] is not None
        else None,
        "shipped_kg": s["shipped_kg"],
        "created_at": s["created_at"],
        "lines": shown,
        "transport_events": [
            {
                "id": t["id"],
                "kind": t["kind"],
                "occurred_at": t["occurred_at"],
                "place": t["place"],
                "note": t["note"],
                "recorded_by": t["recorded_by_code"],
            }
            for t in moves
        ],
        "receipt": receipt,
        "rejection": {"rejected_at": s["rejected_at"], "reason": s["reject_reason"]}
        if s["status"] == "rejected"
        else None,
    }


# --- changing -----------------------------------------------------------------------
def create(
    conn: DbConn,
    sender: UUID,
    receiver: str | UUID,
    *,
    departed_at: datetime,
    departure_place: str,
    lines: Sequence[tuple[UUID, Decimal | float | str]],
    carrier: str | None = None,
    vehicle: str | None = None,
    container: str | None = None,
    seal: str | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    sale_reference: Mapping[str, Any] | None = None,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """`sender` ships kg of its lots (`lines`: [(lot_id, kg)]) to `receiver` (a code or
    id); returns the shipment as `get` gives it, in transit.

    NotFound for an unknown organisation or a lot that is not the sender's;
    RuleViolation (422) "shipment_self", "not_partners" (no active partnership: propose
    one, POST /v1/partners), "no_lines", "positive_kg", "duplicate_line", "lot_overdrawn"
    (lot_id, code, requested_kg, remaining_kg: as a processing step), "shipment_in_future",
    "shipment_out_of_order" (departed before a shipped lot came to be); ValidationFailed for
    a container number, document or sale reference that is not one.
    """
    # a savepoint inside the caller's transaction: a refused shipment leaves nothing behind
    with conn.transaction():
        to = organisations.find(conn, receiver)
        if to["id"] == sender:
            raise RuleViolation(
                "shipment_self",
                "an organisation does not ship to itself; record a processing step instead",
                field="receiver",
            )
        if not partners.are_partners(conn, sender, to["id"]):
            raise RuleViolation(
                "not_partners",
                f"{to['code']} is not an active trading partner of your organisation; ship"
                " only to partners (propose one: POST /v1/partners)",
                field="receiver",
                receiver=to["code"],
            )
        wanted = _lines(lines)
        place = _words(departure_place, "departure_place", 200)
        params = dict(
            carrier=_text(carrier, "carrier", 200),
            vehicle=_text(vehicle, "vehicle", 100),
            container=None if container is None else check_container(container),
            seal=_text(seal, "seal", 40),
            documents=Jsonb(check_documents(documents)),
        )
        sale_type, sale_id = check_sale(sale_reference)
        _check_time("departed_at", departed_at, rules, not_before=None)
        locked = {
            r["id"]: r
            for r in q.rows(
                conn, STEPS_SQL["lock_input_lots"], {"ids": list(wanted), "cooperative_id": sender}
            )
        }
        for lot_id, kg in wanted.items():
            lot = locked.get(lot_id)
            if lot is None:
                raise NotFound(
                    f"lot {lot_id} is not a lot of your organisation; a shipment takes only"
                    " the sender's own lots",
                    lot_id=str(lot_id),
                )
            if kg > lot["remaining_kg"]:
                raise RuleViolation(
                    "lot_overdrawn",
                    f"lot {lot['code']} has {lot['remaining_kg']} kg left, {kg} kg were asked for",
                    lot_id=str(lot_id),
                    code=lot["code"],
                    requested_kg=str(kg),
                    remaining_kg=str(lot["remaining_kg"]),
                )
            _check_time(
                "departed_at",
                departed_at,
                rules,
                not_before={"at": lot["ready_at"], "what": f"lot {lot['code']} came to be"},
            )
        for lot_id, kg in wanted.items():
            q.execute(conn, STEPS_SQL["consume_lot"], {"id": lot_id, "kg": kg})
        row = q.one(
            conn,
            SQL["shipment_insert"],
            dict(
                sender_id=sender,
                receiver_id=to["id"],
                departed_at=departed_at,
                departure_place=place,
                sale_type=sale_type,
                sale_id=sale_id,
                shipped_kg=sum(wanted.values(), Decimal(0)),
                **params,
            ),
        )
        assert row is not None  # insert ... returning
        shipment_id: UUID = row["id"]
        q.execute(
            conn,
            SQL["shipment_lines_insert"],
            {
                "shipment_id": shipment_id,
                "line_nos": list(range(1, len(wanted) + 1)),
                "lot_ids": list(wanted),
                "kgs": list(wanted.values()),
            },
        )
        s, stored_lines, _ = rows_of(conn, shipment_id)
        event = append_event(
            conn,
            sender,
            EVENT_KINDS["sent"],
            list(wanted),
            departed_at,
            sent_payload(s, stored_lines),
            keys=keys,
        )
        q.execute(conn, SQL["shipment_set_sent_event"], {"id": shipment_id, "seq": event["seq"]})
        # the shipped lots' documents list this event: their statements move with it
        statements.refresh(conn, keys, sender, list(wanted))
        log.info(
            "shipment_sent id=%s to=%s lines=%s kg=%s",
            shipment_id,
            to["code"],
            len(wanted),
            s["shipped_kg"],
        )
        return get(conn, sender, shipment_id)


def _lock(conn: DbConn, organisation: UUID, shipment_id: UUID) -> Row:
    row = q.one(conn, SQL["shipment_lock"], {"id": shipment_id, "viewer": organisation})
    if row is None:
        raise _not_yours(shipment_id)
    return row


def _not_yours(shipment_id: UUID) -> NotFound:
    return NotFound(f"shipment {shipment_id} is not one of your organisation's", kind="shipment")


def _in_transit(s: Row, doing: str) -> None:
    if s["status"] != "in_transit":
        raise Conflict(
            f"shipment {s['id']} is {s['status']}: it changes no more, so nothing can {doing}",
            status=s["status"],
        )


def _receiver_only(s: Row, organisation: UUID, verb: str) -> None:
    if s["receiver_id"] != organisation:
        raise Conflict(
            f"your organisation sent shipment {s['id']}: its receiver {s['receiver_code']}"
            f" {verb}s it",
            status=s["status"],
        )


def _lock_sender_lots(conn: DbConn, s: Row, lines: Sequence[Row]) -> None:
    """The sender's shipped lots, locked in id order before any chain (processing's order)."""
    q.rows(
        conn,
        STEPS_SQL["lock_input_lots"],
        {"ids": [line["lot_id"] for line in lines], "cooperative_id": s["sender_id"]},
    )


def _lock_chains(conn: DbConn, s: Row) -> None:
    for organisation in sorted((s["sender_id"], s["receiver_id"])):
        lock_chain(conn, organisation)


def accept(
    conn: DbConn,
    receiver: UUID,
    shipment_id: UUID,
    *,
    received_at: datetime,
    arrival_place: str,
    lines: Sequence[Mapping[str, Any]],
    measurements: Mapping[str, Any] | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    loss_tolerance_pct: float | Decimal = DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """The receiver accepts a shipment in transit with what it weighed and measured;
    returns the shipment as `get` gives it, accepted, each line naming the new lot.

    lines: one entry per line of the shipment, [{"line": its number, "received_kg",
    "code": the receiver's new lot code, "kind" (default: the shipped lot's),
    "product_id" (the receiver's, optional), "measurements" (optional)}]; lines that
    name the same code go into one lot. A line's loss beyond `loss_tolerance_pct` of its
    kg, or the whole shipment's, is flagged (loss_flagged, with the figures).
    NotFound when the shipment is not the organisation's (or a product not its own);
    Conflict when it sent the shipment itself, when the shipment is no longer in transit,
    or when a lot code is taken; RuleViolation "mass_balance" (more received than
    shipped allows), "positive_kg", "shipment_in_future", "shipment_out_of_order";
    ValidationFailed for lines that do not match the shipment's.
    """
    with conn.transaction():
        s = _lock(conn, receiver, shipment_id)
        _receiver_only(s, receiver, "accept")
        _in_transit(s, "accept it")
        _, shipped, _ = rows_of(conn, shipment_id)
        _check_time(
            "received_at",
            received_at,
            rules,
            not_before={"at": s["departed_at"], "what": "the shipment departed"},
        )
        place = _words(arrival_place, "place", 200)
        docs = check_documents(documents)
        tolerance = Decimal(str(loss_tolerance_pct)).quantize(PCT)
        ratio = Decimal(str(rules.step_max_yield.get(RECEIVING, 1.0)))
        got = _received(shipped, lines, ratio)
        _lock_sender_lots(conn, s, shipped)
        receipt = jsonable(dict(measurements or {}))
        if not isinstance(receipt, dict):
            raise ValidationFailed("measurements must be a JSON object", field="measurements")
        by_line = {line["line_no"]: line for line in shipped}
        groups: dict[str, list[int]] = {}
        for n, entry in got.items():
            groups.setdefault(entry["code"], []).append(n)
        made: list[tuple[Row, list[int]]] = []  # (transformation row, its lines)
        for code, numbers in groups.items():
            made.append(
                _receiving_step(
                    conn,
                    s,
                    code,
                    [by_line[n] for n in numbers],
                    got,
                    receipt,
                    docs,
                    tolerance,
                    received_at,
                    place,
                )
            )
        flags = {
            n: _pct(by_line[n]["kg"] - e["received_kg"], by_line[n]["kg"]) > tolerance
            for n, e in got.items()
        }
        received_total = sum((e["received_kg"] for e in got.values()), Decimal(0))
        flagged = any(flags.values()) or (
            _pct(s["shipped_kg"] - received_total, s["shipped_kg"]) > tolerance
        )
        lot_of_line = {n: t["lot_id"] for t, numbers in made for n in numbers}
        ordered = sorted(got)
        q.execute(
            conn,
            SQL["shipment_lines_receive"],
            {
                "id": shipment_id,
                "line_nos": ordered,
                "received_kgs": [got[n]["received_kg"] for n in ordered],
                "measurements": [Jsonb(got[n]["measurements"]) for n in ordered],
                "flags": [flags[n] for n in ordered],
                "receiver_lot_ids": [lot_of_line[n] for n in ordered],
            },
        )
        q.execute(
            conn,
            SQL["shipment_accept"],
            {
                "id": shipment_id,
                "received_at": received_at,
                "arrival_place": place,
                "received_kg": received_total,
                "measurements": Jsonb(receipt),
                "documents": Jsonb(docs),
                "loss_tolerance_pct": tolerance,
                "loss_flagged": flagged,
            },
        )
        new_lots = [t["lot_id"] for t, _ in made]
        accepted = _record_outcome(conn, s, received_at, new_lots, keys=keys)
        for t, numbers in made:
            _record_receiving_event(conn, s, t, numbers, by_line, accepted, keys=keys)
        statements.refresh(conn, keys, receiver, new_lots)
        log.info(
            "shipment_accepted id=%s lots=%s received_kg=%s loss_flagged=%s",
            shipment_id,
            len(new_lots),
            received_total,
            flagged,
        )
        return get(conn, receiver, shipment_id)


def _received(
    shipped: Sequence[Row], lines: Sequence[Mapping[str, Any]], ratio: Decimal
) -> dict[int, Row]:
    """The receipt's lines by number, checked against the shipment's: {"received_kg",
    "code", "kind", "product_id", "measurements"}."""
    by_line = {line["line_no"]: line for line in shipped}
    got: dict[int, Row] = {}
    for entry in lines:
        n = entry.get("line")
        if not isinstance(n, int) or n not in by_line:
            raise ValidationFailed(
                f"line {str(n)[:10]!r} is not a line of the shipment (it has lines 1 to"
                f" {len(by_line)})",
                field="lines.line",
            )
        if n in got:
            raise ValidationFailed(f"line {n} is given twice", field="lines.line")
        line = by_line[n]
        kg = to_kg(entry.get("received_kg", 0), field="lines.received_kg")
        if kg <= 0:
            raise RuleViolation(
                "positive_kg",
                f"line {n}: received kilograms must be more than 0 (reject the shipment if"
                " nothing arrived)",
                line=n,
            )
        if kg > line["kg"] * ratio:
            most = (line["kg"] * ratio).quantize(KG)
            raise RuleViolation(
                "mass_balance",
                f"line {n}: {kg} kg received of {line['kg']} kg shipped is more than"
                f" receiving's maximum yield {ratio} allows ({most} kg)",
                step=RECEIVING,
                line=n,
                input_kg=str(line["kg"]),
                output_kg=str(kg),
                max_yield=float(ratio),
                max_output_kg=str(most),
            )
        kind = entry.get("kind") or line["kind"]
        if kind not in LOT_KINDS:
            raise ValidationFailed(
                f"lot kind must be one of {', '.join(LOT_KINDS)}", field="lines.kind"
            )
        measured = jsonable(dict(entry.get("measurements") or {}))
        code = entry.get("code")
        if not isinstance(code, str) or not code:
            raise ValidationFailed(f"line {n}: give the code of your new lot", field="lines.code")
        got[n] = {
            "received_kg": kg,
            "code": code,
            "kind": kind,
            "product_id": entry.get("product_id"),
            "measurements": measured,
        }
    missing = sorted(set(by_line) - set(got))
    if missing:
        raise ValidationFailed(
            f"the receipt names every line of the shipment; line(s) {missing[:20]} are missing",
            field="lines",
            missing=missing[:20],
        )
    for code in {e["code"] for e in got.values()}:
        same = [e for e in got.values() if e["code"] == code]
        for key in ("kind", "product_id"):
            if len({str(e[key]) for e in same}) > 1:
                raise ValidationFailed(
                    f"the lines that go into lot {code} give different {key}s",
                    field=f"lines.{key}",
                )
    return got


def _receiving_step(
    conn: DbConn,
    s: Row,
    code: str,
    lines: list[Row],
    got: dict[int, Row],
    receipt: Row,
    docs: list[Row],
    tolerance: Decimal,
    at: datetime,
    place: str,
) -> tuple[Row, list[int]]:
    """One receiving transformation of the receiver, at the receipt's time and place: the
    sender's lots of `lines` in (their shipped kg), one new lot of the receiver out (what
    was received of them)."""
    numbers = [line["line_no"] for line in lines]
    input_kg = sum((line["kg"] for line in lines), Decimal(0))
    output_kg = sum((got[n]["received_kg"] for n in numbers), Decimal(0))
    lost = input_kg - output_kg
    measured: Row = {**receipt}
    if len(numbers) == 1:
        measured.update(got[numbers[0]]["measurements"])
    else:
        measured["lines"] = [{"line": n, **got[n]["measurements"]} for n in numbers]
    measured.update(
        shipment_id=str(s["id"]),
        loss_kg=str(lost.quantize(KG)),
        loss_pct=str(_pct(lost, input_kg)),
        loss_flagged=_pct(lost, input_kg) > tolerance,
    )
    t = q.one(
        conn,
        STEPS_SQL["insert_transformation"],
        dict(
            cooperative_id=s["receiver_id"],
            step=RECEIVING,
            occurred_at=at,
            place=place,
            place_i18n=None,
            measurements=Jsonb(measured),
            evidence=Jsonb(docs),
            input_kg=input_kg,
            output_kg=output_kg,
        ),
    )
    assert t is not None  # insert ... returning
    q.execute(
        conn,
        STEPS_SQL["insert_inputs"],
        {
            "transformation_id": t["id"],
            "lot_ids": [line["lot_id"] for line in lines],
            "kgs": [line["kg"] for line in lines],
        },
    )
    cherry: Decimal | None = Decimal(0)
    for line in lines:
        if cherry is None or line["cherry_equiv_kg"] is None or line["quantity_kg"] <= 0:
            cherry = None
            continue
        cherry += line["kg"] * line["cherry_equiv_kg"] / line["quantity_kg"]
    first = got[numbers[0]]
    froms = [line["harvest_from"] for line in lines if line["harvest_from"]]
    tos = [line["harvest_to"] for line in lines if line["harvest_to"]]
    lot_id = insert_lot(
        conn,
        s["receiver_id"],
        code=code,
        kind=first["kind"],
        quantity_kg=output_kg,
        product_id=first["product_id"],
        produced_by=t["id"],
        harvest_from=min(froms, default=None),
        harvest_to=max(tos, default=None),
        cherry_equiv_kg=None if cherry is None else cherry.quantize(Decimal("0.000001")),
    )
    q.execute(
        conn,
        STEPS_SQL["insert_outputs"],
        {"transformation_id": t["id"], "lot_ids": [lot_id], "kgs": [output_kg]},
    )
    return {**t, "lot_id": lot_id}, numbers


def _record_outcome(
    conn: DbConn, s: Row, at: datetime, receiver_lots: list[UUID], *, keys: KeyRing
) -> Row:
    """The accepted or rejected shipment as an event in both chains (in the order of the
    organisations' ids), naming the receiver's new lots in the receiver's; returns the
    receiver's event."""
    _lock_chains(conn, s)
    now, lines, _ = rows_of(conn, s["id"])
    payload = outcome_payload(now, lines, event_at(conn, now["sent_event_seq"]))
    kind = EVENT_KINDS[now["status"]]
    events: dict[UUID, Row] = {}
    for organisation in sorted((s["sender_id"], s["receiver_id"])):
        named = receiver_lots if organisation == s["receiver_id"] else []
        events[organisation] = append_event(conn, organisation, kind, named, at, payload, keys=keys)
    q.execute(
        conn,
        SQL["shipment_set_outcome_events"],
        {
            "id": s["id"],
            "seq": events[s["receiver_id"]]["seq"],
            "sender_seq": events[s["sender_id"]]["seq"],
        },
    )
    return events[s["receiver_id"]]


def _record_receiving_event(
    conn: DbConn,
    s: Row,
    t: Row,
    numbers: list[int],
    by_line: dict[int, Row],
    accepted: Row,
    *,
    keys: KeyRing,
) -> None:
    """A receiving transformation's event in the receiver's chain, as processing records a
    step (verification reads it so), with the receipt it belongs to."""
    lot = lot_by_id(conn, t["lot_id"])
    event = append_event(
        conn,
        s["receiver_id"],
        "transformation",
        [t["lot_id"]],
        t["occurred_at"],
        {
            "transformation_id": str(t["id"]),
            "step": RECEIVING,
            "occurred_at": t["occurred_at"],
            "place": t["place"],
            "measurements": t["measurements"],
            "evidence": t["evidence"],
            "input_kg": str(t["input_kg"]),
            "output_kg": str(t["output_kg"]),
            "inputs": [
                {"lot_id": str(by_line[n]["lot_id"]), "kg": str(by_line[n]["kg"])} for n in numbers
            ],
            "outputs": [{**lot_payload(lot), "kg": str(lot["quantity_kg"])}],
            "shipment": {
                "id": str(s["id"]),
                "accepted_event": {"seq": accepted["seq"], "hash": accepted["hash"]},
            },
        },
        keys=keys,
    )
    q.execute(conn, STEPS_SQL["set_transformation_event"], {"id": t["id"], "seq": event["seq"]})


def reject(conn: DbConn, receiver: UUID, shipment_id: UUID, *, reason: str, keys: KeyRing) -> Row:
    """The receiver rejects a shipment in transit with a reason: the kg of every line
    return to the sender's lots. Returns the shipment as `get` gives it, rejected.
    NotFound when it is not the organisation's; Conflict when it sent it itself or the
    shipment is no longer in transit."""
    with conn.transaction():
        s = _lock(conn, receiver, shipment_id)
        _receiver_only(s, receiver, "reject")
        _in_transit(s, "reject it")
        why = _words(reason, "reason", 500)
        _, shipped, _ = rows_of(conn, shipment_id)
        _lock_sender_lots(conn, s, shipped)
        for line in shipped:
            returned = q.execute(
                conn,
                SQL["lot_return"],
                {"id": line["lot_id"], "kg": line["kg"], "cooperative_id": s["sender_id"]},
            )
            if returned != 1:
                # only an edit behind the application's back leaves a lot so
                raise Conflict(
                    f"lot {line['code']} cannot take back {line['kg']} kg: it would hold more"
                    " than its quantity (run coffeetrace verify on it)",
                    lot_id=str(line["lot_id"]),
                )
        done = q.one(conn, SQL["shipment_reject"], {"id": shipment_id, "reason": why})
        assert done is not None  # locked in transit
        _record_outcome(conn, s, done["rejected_at"], [], keys=keys)
        log.info("shipment_rejected id=%s lines=%s", shipment_id, len(shipped))
        return get(conn, receiver, shipment_id)


def record_transport(
    conn: DbConn,
    organisation: UUID,
    shipment_id: UUID,
    *,
    kind: str,
    occurred_at: datetime,
    place: str,
    note: str | None = None,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """Either party follows a shipment in transit: `kind` (TRANSPORT_KINDS) at a time and
    place. Returns the shipment as `get` gives it. NotFound when it is not the
    organisation's; Conflict when it is no longer in transit; RuleViolation
    "shipment_in_future", "shipment_out_of_order" (before it departed)."""
    with conn.transaction():
        s = _lock(conn, organisation, shipment_id)
        _in_transit(s, "follow it")
        if kind not in TRANSPORT_KINDS:
            raise ValidationFailed(
                f"transport event kind {str(kind)[:40]!r} is none of {', '.join(TRANSPORT_KINDS)}",
                field="kind",
            )
        _check_time(
            "occurred_at",
            occurred_at,
            rules,
            not_before={"at": s["departed_at"], "what": "the shipment departed"},
        )
        row = q.one(
            conn,
            SQL["transport_event_insert"],
            {
                "shipment_id": shipment_id,
                "recorded_by": organisation,
                "kind": kind,
                "occurred_at": occurred_at,
                "place": _words(place, "place", 200),
                "note": _text(note, "note", 500),
            },
        )
        assert row is not None  # insert ... returning
        now, _, moves = rows_of(conn, shipment_id)
        t = next(m for m in moves if m["id"] == row["id"])
        event = append_event(
            conn,
            organisation,
            EVENT_KINDS["transport"],
            [],
            occurred_at,
            transport_payload(now, t),
            keys=keys,
        )
        q.execute(conn, SQL["transport_event_set_event"], {"id": row["id"], "seq": event["seq"]})
        return get(conn, organisation, shipment_id)
