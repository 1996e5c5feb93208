"""Captured EPCIS events that join the trail: what a partner's system captures about the
platform's lots becomes the platform's own records, made by the same domain functions
the API calls (trace/processing.py, trace/shipments.py), so every rule holds alike.

The capture job (trace/epcis_capture.py) calls `apply` with the events it has just stored,
in its transaction. An event names a lot by its GS1 Digital Link or LGTIN
(`urn:epc:class:lgtin:...`: its product's GTIN and its code), by its public page
`{base_url}/l/{public_id}` (the lot URI the exports write when it has no GTIN), or by the
output class an earlier captured step gave it. A lot of another organisation counts only
when the capturing organisation holds it: then the event is about the lot the
organisation's receiving step made of it (what it received by shipment).

- A TransformationEvent whose inputs are such lots records a processing step: its
  bizStep names the step (the last segment of its URI, `.../voc/bizstep/roasting`, or a
  CBV step word), its inputs are kg taken (quantityList in KGM, GRM, TNE or LBR; an EPC
  in inputEPCList takes what is left of the lot), its outputs are new lots of the
  capturing organisation, one per outputQuantityList entry, whose class names the lot
  (`/01/{gtin}/10/{code}` or LGTIN; the organisation's product of that GTIN, if any).
- An ObjectEvent with bizStep shipping of the organisation's lots, its destinationList
  naming a partner on the platform (by GLN: `urn:epc:id:pgln:...`, `urn:epc:id:sgln:...`,
  its Digital Link; or `urn:coffeetrace:org:{code}`), creates a shipment; one with
  bizStep receiving of lots in transit to the capturing organisation accepts that
  shipment (each line received as the quantity says; the new lot keeps the shipped lot's
  code).
- An ObjectEvent with a sensorElementList on lots is an observation of them: it is
  listed in their EPCIS export (trace/epcis.py) and named by the capture's chain event,
  so it is in the lots' history.

A refusal is the bindings' ValidationException naming the event and the field, with the
domain's reason (`ct:reason`: mass_balance, lot_overdrawn, lot_not_held, ...). What an
event made is kept in `epcis_trail` (migration 0058) and recorded in the capture's chain
event (`trail` of the event's entry), which the chain audit holds the rows to
(`check_chain`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import CoffeetraceError, RuleViolation, ValidationFailed
from coffeetrace.settings import DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis_hash, processing, shipments
from coffeetrace.trace import queries as q
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules

SQL = load_queries("coffeetrace.trace", "epcis_trail.sql")
DL = epcis_hash.DL_DOMAIN
LOT_CLASS = re.compile(r"^" + re.escape(DL) + r"/01/([0-9]{14})/10/([^/]+)$")
PARTY = re.compile(r"^" + re.escape(DL) + r"/(?:417|414)/([0-9]{13})(?:/254/[^/]+)?$")
ORG_URN = "urn:coffeetrace:org:"
# kg per unit of the UN/CEFACT Rec 20 codes a quantity of coffee comes in
KG_PER_UOM = {"KGM": Decimal(1), "GRM": Decimal("0.001"), "TNE": Decimal(1000),
              "LBR": Decimal("0.45359237")}  # fmt: skip
# the kind of lot a step makes (steps not named here keep their first input's kind)
STEP_KINDS = {"drying": "dried_cherry", "hulling": "green", "wet_processing": "green",
              "cherry_to_green": "green", "roasting": "roasted", "packing": "packed",
              "blending": "blend"}  # fmt: skip
# the field of the event a domain refusal is about
RULE_FIELDS = {"mass_balance": "outputQuantityList", "cherry_yield": "outputQuantityList",
               "lot_overdrawn": "inputQuantityList", "step_before_inputs": "eventTime",
               "step_in_future": "eventTime", "shipment_in_future": "eventTime",
               "shipment_out_of_order": "eventTime", "unknown_step": "bizStep",
               "not_partners": "destinationList", "shipment_self": "destinationList",
               "duplicate_input": "inputQuantityList"}  # fmt: skip
PLACE_CHARS = 200  # a step's or shipment's place, as the domain takes it
BTT = ("https://ref.gs1.org/cbv/BTT-", "http://ref.gs1.org/cbv/BTT-", "urn:epcglobal:cbv:btt:")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrailContext:
    """What the trail needs besides the events: the public base URL (lot pages), the
    configured rules and the shipments' loss tolerance."""

    base_url: str
    rules: TraceRules = DEFAULT_RULES
    loss_tolerance_pct: float = DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT


@dataclass(frozen=True)
class LotRef:
    """A lot an identifier names."""

    lot_id: UUID
    cooperative_id: UUID
    code: str
    kind: str


@dataclass
class Link:
    """What one captured event made: the trail row, and the capturing organisation's lots
    its chain event names (their history moved)."""

    event_id: str
    kind: str
    transformation_id: UUID | None = None
    shipment_id: UUID | None = None
    lot_ids: list[UUID] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    def recorded(self) -> Row:
        """The facts the capture's chain event records of it (and the row must hold)."""
        return {
            "kind": self.kind,
            "transformation_id": str(self.transformation_id) if self.transformation_id else None,
            "shipment_id": str(self.shipment_id) if self.shipment_id else None,
            "lots": [str(x) for x in self.lot_ids],
            "classes": list(self.classes),
        }


@dataclass
class Outcome:
    """The links made, and the problems (and eventIDs) of the events refused."""

    links: list[Link] = field(default_factory=list)
    errors: list[Row] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class Refused(ValidationFailed):
    """An event the trail cannot take: `field` of the event, `reason` the rule."""

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message, field=field)
        self.field = field
        self.reason = reason


# --- identifiers -----------------------------------------------------------------------
def lot_class(ident: str) -> tuple[str, str] | None:
    """(GTIN, lot code) of a canonical Digital Link (or LGTIN) naming a lot, else None."""
    m = LOT_CLASS.match(ident)
    return (m.group(1), unquote(m.group(2))) if m else None


def public_id_of(ident: str, base_url: str) -> str | None:
    """The public id of a lot page URI `{base_url}/l/{public_id}`, else None."""
    base = base_url.rstrip("/") + "/l/"
    if not ident.startswith(base):
        return None
    rest = ident[len(base) :]
    return rest if rest and "/" not in rest and "?" not in rest and "#" not in rest else None


def _ref(row: Row) -> LotRef:
    return LotRef(row["lot_id"], row["cooperative_id"], row["code"], row["kind"])


def resolve(
    conn: DbConn, cooperative_id: UUID, idents: Iterable[str], base_url: str
) -> dict[str, LotRef]:
    """The lots the (canonical) identifiers name; those naming none are left out."""
    wanted = sorted(set(idents))
    found: dict[str, LotRef] = {}
    classes = [(i, lot_class(i)) for i in wanted]
    classes_ = [(i, c) for i, c in classes if c]
    if classes_:
        rows = q.rows(conn, SQL["trail_lots_by_gtin_and_code"], {
            "idents": [i for i, _ in classes_], "gtins": [c[0] for _, c in classes_],
            "codes": [c[1] for _, c in classes_]})  # fmt: skip
        found.update({r["ident"]: _ref(r) for r in rows})
    pages = [(i, p) for i in wanted if (p := public_id_of(i, base_url))]
    if pages:
        rows = q.rows(conn, SQL["trail_lots_by_public_id"], {
            "idents": [i for i, _ in pages], "public_ids": [p for _, p in pages]})  # fmt: skip
        found.update({r["ident"]: _ref(r) for r in rows})
    rest = [i for i in wanted if i not in found]
    if rest:
        rows = q.rows(conn, SQL["trail_lots_by_class"],
                      {"cooperative_id": cooperative_id, "idents": rest})  # fmt: skip
        found.update({r["ident"]: _ref(r) for r in rows})
    return found


def _row_idents(row: Row) -> list[str]:
    return [*row["any_epcs"], *row["any_classes"]]


# --- reading an event ------------------------------------------------------------------
def _prefixes(event: Mapping[str, Any]) -> dict[str, str]:
    return epcis_hash.context_prefixes(event.get("@context"))


def _canonical(value: Any, prefixes: Mapping[str, str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return epcis_hash.canonical_id(epcis_hash.expand_curie(value.strip(), prefixes))


def _kg(entry: Mapping[str, Any], where: str) -> Decimal:
    uom = entry.get("uom")
    factor = KG_PER_UOM.get(uom) if isinstance(uom, str) else None
    if factor is None:
        raise Refused(
            f"{where}.uom: {str(uom)[:20]!r} is no unit of mass; give the kilograms of coffee"
            f" (uom {', '.join(KG_PER_UOM)})",
            field=f"{where}.uom",
            reason="quantity_not_mass",
        )
    try:
        kg = (Decimal(str(entry.get("quantity"))) * factor).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError) as exc:
        raise Refused(f"{where}.quantity: not a number", field=f"{where}.quantity",
                      reason="quantity_not_mass") from exc  # fmt: skip
    if not kg.is_finite() or kg <= 0 or kg >= Decimal("1e11"):
        raise Refused(
            f"{where}.quantity: {entry.get('quantity')!r} {uom} is not a positive mass a lot"
            " can hold",
            field=f"{where}.quantity",
            reason="positive_kg",
        )
    return kg


@dataclass(frozen=True)
class Named:
    """A lot an event names: where (the field), the lot, the kg (None: an EPC, no quantity)."""

    where: str
    ident: str
    lot: LotRef | None
    kg: Decimal | None


def _named(
    event: Mapping[str, Any], refs: Mapping[str, LotRef], epc_field: str, quantity_field: str
) -> list[Named]:
    prefixes = _prefixes(event)
    out: list[Named] = []
    for i, value in enumerate(event.get(epc_field) or []):
        ident = _canonical(value, prefixes)
        if ident is not None:
            out.append(Named(f"{epc_field}[{i}]", ident, refs.get(ident), None))
    for i, entry in enumerate(event.get(quantity_field) or []):
        ident = _canonical(entry.get("epcClass"), prefixes) if isinstance(entry, dict) else None
        if ident is not None:
            where = f"{quantity_field}[{i}]"
            lot = refs.get(ident)
            out.append(Named(where, ident, lot, _kg(entry, where) if lot else None))
    return out


def _place(event: Mapping[str, Any]) -> str | None:
    for key in ("bizLocation", "readPoint"):
        value = event.get(key)
        ident = value.get("id") if isinstance(value, dict) else None
        if isinstance(ident, str) and ident.strip():
            return ident.strip()[:PLACE_CHARS]
    return None


def _at(row: Row) -> datetime:
    at = epcis_hash.parse_time(str(row["event"].get("eventTime")))
    assert at is not None  # capture refused the event otherwise
    return at


def step_of(biz_step: str | None) -> str | None:
    """The processing step a bizStep names: a CBV word that is one, or a URI whose last
    segment is one (`https://trace.example/voc/bizstep/roasting`); None otherwise."""
    if not biz_step:
        return None
    last = re.split(r"[/:#]", biz_step.rstrip("/"))[-1]
    last = unquote(last)
    return last if last in processing.STEPS else None


# --- holding lots ----------------------------------------------------------------------
def _held(conn: DbConn, cooperative_id: UUID, named: Named) -> LotRef:
    """The capturing organisation's lot for a lot an event names: the lot itself when it
    is its own, else the lot its receiving step made of it (lot_not_held otherwise)."""
    assert named.lot is not None
    if named.lot.cooperative_id == cooperative_id:
        return named.lot
    rows = q.rows(conn, SQL["trail_held_lots"],
                  {"lot_ids": [named.lot.lot_id], "cooperative_id": cooperative_id})  # fmt: skip
    left = [r for r in rows if r["remaining_kg"] > 0] or rows
    if not rows:
        raise Refused(
            f"{named.where}: {named.ident[:120]} is a lot of another organisation that yours"
            " does not hold: an organisation records events on its own lots, and on lots"
            " it received by shipment (accept the shipment first)",
            field=named.where,
            reason="lot_not_held",
        )
    if len(left) > 1:
        codes = ", ".join(r["code"] for r in left[:10])
        raise Refused(
            f"{named.where}: your organisation received {named.ident[:120]} into several"
            f" lots ({codes}); name the one the event is about",
            field=named.where,
            reason="lot_ambiguous",
        )
    return _ref(left[0])


# --- the events ------------------------------------------------------------------------
def _transformation(
    conn: DbConn, coop: UUID, row: Row, refs: dict[str, LotRef], ctx: TrailContext, keys: Any
) -> Link | None:
    event = row["event"]
    inputs = _named(event, refs, "inputEPCList", "inputQuantityList")
    if not any(n.lot for n in inputs):
        return None
    for n in inputs:
        if n.lot is None:
            raise Refused(
                f"{n.where}: {n.ident[:120]} names no lot on the platform; a step on"
                " coffeetrace lots takes only coffeetrace lots (record the others first)",
                field=n.where,
                reason="input_not_a_lot",
            )
    step = step_of(row["biz_step"])
    if step is None:
        raise Refused(
            f"bizStep: {str(row['biz_step'])[:120]!r} names no processing step; write one"
            f" of {', '.join(processing.STEPS)} as the last segment of the bizStep's URI"
            f" ({ctx.base_url.rstrip('/')}/voc/bizstep/roasting)",
            field="bizStep",
            reason="unknown_step",
        )
    taken: list[tuple[UUID, Decimal]] = []
    kinds: list[str] = []
    for n in inputs:
        held = _held(conn, coop, n)
        kg = n.kg if n.kg is not None else lot_by_id(conn, held.lot_id)["remaining_kg"]
        taken.append((held.lot_id, kg))
        kinds.append(held.kind)
    prefixes = _prefixes(event)
    if event.get("outputEPCList"):
        raise Refused(
            "outputEPCList: a step's new lots are classes with kilograms; list them in"
            " outputQuantityList (epcClass, quantity, uom KGM)",
            field="outputEPCList",
            reason="output_without_quantity",
        )
    outputs: list[Row] = []
    classes: list[str] = []
    for i, entry in enumerate(event.get("outputQuantityList") or []):
        where = f"outputQuantityList[{i}]"
        ident = _canonical(entry.get("epcClass"), prefixes) if isinstance(entry, dict) else None
        named = lot_class(ident) if ident else None
        if ident is None or named is None:
            raise Refused(
                f"{where}.epcClass: a new lot is named by its class with a lot number: a"
                " GS1 Digital Link .../01/{gtin}/10/{lot} or urn:epc:class:lgtin:...",
                field=f"{where}.epcClass",
                reason="output_not_a_lot",
            )
        if ident in refs:
            raise Refused(
                f"{where}.epcClass: {ident[:120]} is a lot already; a step makes new lots",
                field=f"{where}.epcClass",
                reason="output_exists",
            )
        gtin, code = named
        product = q.one(conn, SQL["trail_product_by_gtin"], {"cooperative_id": coop, "gtin": gtin})
        outputs.append({"code": code, "kg": _kg(entry, where),
                        "kind": STEP_KINDS.get(step, kinds[0]),
                        "product_id": product["id"] if product else None})  # fmt: skip
        classes.append(ident)
    if not outputs:
        raise Refused(
            "outputQuantityList: a step on coffeetrace lots makes new lots; list them with"
            " their kilograms",
            field="outputQuantityList",
            reason="no_outputs",
        )
    made = processing.record_transformation(
        conn, coop, step=step, occurred_at=_at(row), inputs=taken, outputs=outputs,
        place=_place(event), rules=ctx.rules, keys=keys,
    )  # fmt: skip
    lots = [lot["id"] for lot in made["outputs"]]
    for ident, lot in zip(classes, made["outputs"], strict=True):
        refs[ident] = LotRef(lot["id"], coop, lot["code"], lot["kind"])
    return Link(row["event_id"], "transformation", transformation_id=made["transformation"]["id"],
                lot_ids=lots, classes=classes)  # fmt: skip


def _organisations(
    conn: DbConn, event: Mapping[str, Any], list_field: str, key: str
) -> tuple[list[Row], int]:
    """The organisations on the platform a source or destination list names, and how many
    entries it has."""
    prefixes = _prefixes(event)
    entries = [e for e in event.get(list_field) or [] if isinstance(e, dict)]
    glns, codes = [], []
    for entry in entries:
        ident = _canonical(entry.get(key), prefixes) or ""
        m = PARTY.match(ident)
        if m:
            glns.append(m.group(1))
        elif ident.startswith(ORG_URN):
            codes.append(unquote(ident[len(ORG_URN) :]))
    found = {r["id"]: r for r in q.rows(conn, SQL["trail_organisations_by_gln"], {"glns": glns})}
    found.update(
        {r["id"]: r for r in q.rows(conn, SQL["trail_organisations_by_code"], {"codes": codes})}
    )
    return list(found.values()), len(entries)


def _one_party(parties: list[Row], where: str) -> Row:
    if len(parties) > 1:
        names = ", ".join(sorted(p["code"] for p in parties))
        raise Refused(f"{where}: names several organisations ({names}); name one",
                      field=where, reason="party_ambiguous")  # fmt: skip
    return parties[0]


def _sale(event: Mapping[str, Any]) -> Row | None:
    for entry in event.get("bizTransactionList") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            continue
        kind = entry["type"]
        for start in BTT:
            kind = kind.removeprefix(start)
        if kind in shipments.SALE_TYPES and isinstance(entry.get("bizTransaction"), str):
            return {"type": kind, "id": entry["bizTransaction"][:200]}
    return None


def _shipping(
    conn: DbConn, coop: UUID, row: Row, refs: dict[str, LotRef], ctx: TrailContext, keys: Any
) -> Link | None:
    event = row["event"]
    named = [n for n in _named(event, refs, "epcList", "quantityList") if n.lot]
    if not named:
        return None
    receivers, given = _organisations(conn, event, "destinationList", "destination")
    if not given:
        raise Refused(
            "destinationList: a shipping of coffeetrace lots names its receiver (type"
            " owning_party; its GLN as urn:epc:id:pgln:... or urn:coffeetrace:org:CODE)",
            field="destinationList",
            reason="receiver_missing",
        )
    if not receivers:
        return None  # shipped to an organisation that is not on the platform
    senders, _ = _organisations(conn, event, "sourceList", "source")
    if any(s["id"] != coop for s in senders):
        raise Refused(
            "sourceList: names another organisation as the sender; an organisation captures"
            " only its own shipments",
            field="sourceList",
            reason="not_the_sender",
        )
    receiver = _one_party(receivers, "destinationList")
    place = _place(event)
    if place is None:
        raise Refused("bizLocation: a shipment needs its departure place (bizLocation or"
                      " readPoint)", field="bizLocation", reason="place_missing")  # fmt: skip
    lines: list[tuple[UUID, Decimal]] = []
    for n in named:
        held = _held(conn, coop, n)
        kg = n.kg if n.kg is not None else lot_by_id(conn, held.lot_id)["remaining_kg"]
        lines.append((held.lot_id, kg))
    sent = shipments.create(
        conn, coop, receiver["id"], departed_at=_at(row), departure_place=place, lines=lines,
        sale_reference=_sale(event), rules=ctx.rules, keys=keys,
    )  # fmt: skip
    return Link(row["event_id"], "shipment_sent", shipment_id=UUID(str(sent["id"])),
                lot_ids=[lot for lot, _ in lines])  # fmt: skip


def _receiving(
    conn: DbConn, coop: UUID, row: Row, refs: dict[str, LotRef], ctx: TrailContext, keys: Any
) -> Link | None:
    event = row["event"]
    named = [n for n in _named(event, refs, "epcList", "quantityList") if n.lot]
    theirs = [n for n in named if n.lot and n.lot.cooperative_id != coop]
    if not theirs:
        return None  # its own lots moved within the organisation: nothing to accept
    receivers, _ = _organisations(conn, event, "destinationList", "destination")
    if any(r["id"] != coop for r in receivers):
        raise Refused("destinationList: names another organisation as the receiver; an"
                      " organisation receives only what is shipped to it",
                      field="destinationList", reason="not_the_receiver")  # fmt: skip
    senders, _ = _organisations(conn, event, "sourceList", "source")
    sender = _one_party(senders, "sourceList") if senders else None
    lots = {n.lot.lot_id: n for n in theirs if n.lot}
    found = q.rows(conn, SQL["trail_shipments_in_transit"], {
        "receiver_id": coop, "sender_id": sender["id"] if sender else None,
        "lot_ids": list(lots)})  # fmt: skip
    exact = [s for s in found if set(s["lot_ids"]) == set(lots)]
    sale = _sale(event)
    if len(exact) > 1 and sale:
        exact = [s for s in exact if (s["sale_type"], s["sale_id"]) == (sale["type"], sale["id"])]
    where = theirs[0].where
    if not exact:
        raise Refused(
            f"{where}: no shipment in transit to your organisation carries exactly the lots"
            " this event receives; its sender records the shipping first, and a receipt"
            " names every lot of the shipment",
            field=where,
            reason="no_shipment",
        )
    if len(exact) > 1:
        raise Refused(
            f"{where}: {len(exact)} shipments in transit carry these lots; name the sale in"
            " bizTransactionList to say which one is received",
            field=where,
            reason="shipment_ambiguous",
        )
    place = _place(event)
    if place is None:
        raise Refused("bizLocation: a receipt needs its arrival place (bizLocation or"
                      " readPoint)", field="bizLocation", reason="place_missing")  # fmt: skip
    shipment_id = exact[0]["id"]
    _, shipped, _ = shipments.rows_of(conn, shipment_id)
    lines = []
    for line in shipped:
        n = lots[line["lot_id"]]
        received = n.kg if n.kg is not None else line["kg"]
        lines.append({"line": line["line_no"], "received_kg": received, "code": line["code"]})
    shipments.accept(
        conn, coop, shipment_id, received_at=_at(row), arrival_place=place, lines=lines,
        loss_tolerance_pct=ctx.loss_tolerance_pct, rules=ctx.rules, keys=keys,
    )  # fmt: skip
    _, received, _ = shipments.rows_of(conn, shipment_id)
    new = list(dict.fromkeys(line["receiver_lot_id"] for line in received))
    return Link(row["event_id"], "shipment_accepted", shipment_id=shipment_id, lot_ids=new)


def _observation(
    conn: DbConn, coop: UUID, row: Row, refs: dict[str, LotRef], ctx: TrailContext, keys: Any
) -> Link | None:
    named = [n for n in _named(row["event"], refs, "epcList", "quantityList") if n.lot]
    if not named:
        return None
    held = list(dict.fromkeys(_held(conn, coop, n).lot_id for n in named))
    return Link(row["event_id"], "observation", lot_ids=held)


Handler = Callable[[DbConn, UUID, Row, dict[str, LotRef], TrailContext, Any], Link | None]


def handler_of(row: Row) -> Handler | None:
    """How an event may join the trail, by its type and bizStep; None: it cannot."""
    if row["event_type"] == "TransformationEvent":
        return _transformation
    if row["event_type"] != "ObjectEvent":
        return None
    if row["biz_step"] == "shipping":
        return _shipping
    if row["biz_step"] == "receiving":
        return _receiving
    if row["event"].get("sensorElementList"):
        return _observation
    return None


def _refusal(index: int, row: Row, exc: CoffeetraceError) -> Row:
    if isinstance(exc, Refused):
        where, reason = exc.field, exc.reason
    else:
        reason = exc.rule if isinstance(exc, RuleViolation) else exc.code
        where = str(exc.details.get("field") or RULE_FIELDS.get(reason) or "eventList")
    detail = f"event {index} ({row['event_id']}): {where}: {exc.message}"
    return {"type": "epcisException:ValidationException", "title": "Event refused by the trail",
            "status": 400, "detail": detail[:2000], "instance": row["event_id"],
            "field": where, "ct:reason": reason}  # fmt: skip


def apply(
    conn: DbConn,
    cooperative_id: UUID,
    rows: Sequence[Row],
    *,
    keys: Any,
    context: TrailContext,
) -> Outcome:
    """Let each of the just stored events (capture's rows, in document order) join the
    trail, each in a savepoint: a refused one leaves nothing behind. The caller drops the
    refused events (`drop_refused`) or rolls the capture back."""
    outcome = Outcome()
    todo = [(i, r, h) for i, r in enumerate(rows) if (h := handler_of(r)) is not None]
    if not todo:
        return outcome
    refs = resolve(conn, cooperative_id, (x for _, r, _ in todo for x in _row_idents(r)),
                   context.base_url)  # fmt: skip
    for index, row, handle in todo:
        if not any(x in refs for x in _row_idents(row)):
            continue
        try:
            with conn.transaction():
                link = handle(conn, cooperative_id, row, refs, context, keys)
        except CoffeetraceError as exc:
            outcome.errors.append(_refusal(index, row, exc))
            outcome.refused.append(row["event_id"])
            continue
        if link is not None:
            outcome.links.append(link)
    log.info("epcis_trail_applied cooperative_id=%s links=%s refused=%s", cooperative_id,
             len(outcome.links), len(outcome.refused))  # fmt: skip
    return outcome


def drop_refused(conn: DbConn, cooperative_id: UUID, event_ids: Sequence[str]) -> None:
    """Take the refused events out of the store again (behaviour proceed)."""
    if event_ids:
        q.execute(conn, SQL["trail_drop_events"],
                  {"cooperative_id": cooperative_id, "event_ids": list(event_ids)})  # fmt: skip


def record(
    conn: DbConn, cooperative_id: UUID, capture_id: UUID, chain_seq: int, links: Sequence[Link]
) -> None:
    """Store the links, once the capture's chain event (`chain_seq`) recorded them."""
    if not links:
        return
    rows = [
        {
            "event_id": x.event_id,
            "kind": x.kind,
            "transformation_id": str(x.transformation_id) if x.transformation_id else None,
            "shipment_id": str(x.shipment_id) if x.shipment_id else None,
            "lot_ids": [str(v) for v in x.lot_ids],
            "classes": x.classes,
        }
        for x in links
    ]
    params = {"cooperative_id": cooperative_id, "capture_id": capture_id,
              "chain_seq": chain_seq, "rows": _json(rows)}  # fmt: skip
    q.execute(conn, SQL["trail_insert"], params)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def made_transformations(conn: DbConn, cooperative_id: UUID, ids: Sequence[UUID]) -> set[UUID]:
    """Of the transformations `ids`, those the organisation's captured events made: its
    own published trail leaves them out (the captured event tells them already)."""
    if not ids:
        return set()
    found = q.rows(conn, SQL["trail_made_transformations"],
                   {"cooperative_id": cooperative_id, "ids": list(ids)})  # fmt: skip
    return {r["id"] for r in found}


def observations(conn: DbConn, lot_ids: Sequence[UUID], limit: int = 1000) -> list[Row]:
    """The captured events with sensor data on the lots, as captured (oldest first)."""
    if not lot_ids:
        return []
    found = q.rows(conn, SQL["trail_observations_of_lots"],
                   {"lot_ids": list(lot_ids), "limit": limit})  # fmt: skip
    return [dict(r["event"]) for r in found]


# --- the chain audit -------------------------------------------------------------------
def _problem(event: Row | None, problem: str, detail: str, event_id: str) -> Row:
    return {"seq": event["seq"] if event else None, "kind": event["kind"] if event else None,
            "problem": problem, "detail": detail,
            "record": {"type": "epcis_trail", "id": event_id}}  # fmt: skip


def _differences(row: Row, recorded: Row, seq: int) -> list[str]:
    out = []
    if row["kind"] != recorded.get("kind"):
        out.append(f"kind {row['kind']} (recorded {recorded.get('kind')})")
    for column in ("transformation_id", "shipment_id"):
        value = str(row[column]) if row[column] else None
        if value != recorded.get(column):
            out.append(column)
    if [str(x) for x in row["lot_ids"]] != list(recorded.get("lots") or []):
        out.append("lot_ids")
    if list(row["classes"]) != list(recorded.get("classes") or []):
        out.append("classes")
    if row["chain_seq"] != seq:
        out.append(f"chain_seq {row['chain_seq']} (recorded by {seq})")
    return out


def check_chain(
    conn: DbConn, cooperative_id: UUID, recorded: Mapping[str, tuple[Row, Row]], batch: int = 5000
) -> list[Row]:
    """Each trail row against the capture chain event that recorded it ({eventID:
    (its `trail` entry, the chain event)}): edited, missing, or inserted behind the
    application's back."""
    problems: list[Row] = []
    seen: set[str] = set()
    after = 0
    while True:
        params = {"cooperative_id": cooperative_id, "after": after, "limit": batch}
        rows = q.rows(conn, SQL["trail_rows_of"], params)
        if not rows:
            break
        for row in rows:
            after = row["id"]
            event_id = row["event_id"]
            entry = recorded.get(event_id)
            if entry is None:
                problems.append(_problem(None, "epcis_trail_unrecorded",
                    f"the trail row of captured event {event_id[:120]!r} is in no capture's"
                    " chain event: it was inserted behind the application's back",
                    event_id))  # fmt: skip
                continue
            seen.add(event_id)
            facts, event = entry
            differences = _differences(row, facts, event["seq"])
            if differences:
                problems.append(_problem(event, "epcis_trail_edited",
                    f"the trail row of captured event {event_id[:120]!r} differs from what"
                    f" event {event['seq']} ({event['kind']}) recorded:"
                    f" {', '.join(differences)}", event_id))  # fmt: skip
    for event_id, (_, event) in recorded.items():
        if event_id not in seen:
            problems.append(_problem(event, "epcis_trail_missing",
                f"the trail row of captured event {event_id[:120]!r}, recorded by event"
                f" {event['seq']} ({event['kind']}), is not in the store", event_id))  # fmt: skip
    return problems
