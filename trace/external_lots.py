"""External lots: coffee from outside the platform, declared by an organisation with an
origin claim, so that it can go into a blend under mass balance.

A roaster blends a Brazilian or Ethiopian green coffee bought on the open market with the
Đắk Lắk coffee that reached it through the platform. It declares that coffee as an
external lot: its kg, kind and code (and product) as any lot of its own, and the claim of
where it comes from: the country of origin (ISO 3166-1 alpha-2), the producer (a farm, a
cooperative, an estate) and the supplier it bought it from, and reference documents
(certificate of origin, contract, invoice: each with the SHA-256 of its file). The lot is
then a lot like any other of the organisation: processing steps take kg of it under mass
balance (processing.py), and the backward trace of whatever it went into shows it as its
own share beside the trees (genealogy.py, external_origins.py), so the shares still sum to
1. It is made by no transformation and fed by no harvest: the claim is the organisation's
word, which is what the trace says of it.

The declaration is one signed "lot_created" event in the organisation's chain (naming the
lot) that records the lot as every lot_created does and the claim (`external`);
verification holds the lot row to it as it holds any lot (verification.py) and the claim
row to it here (`check_lots`, `check_chain`), naming the organisation and the lot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import organisations, shipments, statements
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.jsonutil import canonical_json, iso_utc
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.lots import LOT_KINDS, insert_lot, lot_payload, to_kg
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules

SQL = load_queries("coffeetrace.trace", "external_lots.sql")
LOTS_SQL = load_queries("coffeetrace.trace", "lots.sql")

log = logging.getLogger(__name__)

EVENT_KIND: Final = "lot_created"
# numeric(14, 3): the most kilograms a lot row holds
MAX_KG: Final = Decimal("99999999999.999")
CLAIM_FIELDS: Final = ("origin_country", "producer", "supplier", "documents", "received_at")


def _text(value: Any, field: str, limit: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise ValidationFailed(
            f"{field} must be 1 to {limit} characters, not blank, without NUL", field=field
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise ValidationFailed(f"{field} is not valid text", field=field) from exc
    return value


def claim_payload(row: Mapping[str, Any]) -> Row:
    """The origin claim as the declaration's event records it (and verification rebuilds
    it from the row)."""
    return {
        "origin_country": row["origin_country"],
        "producer": row["producer"],
        "supplier": row["supplier"],
        "documents": list(row["documents"] or []),
        "received_at": iso_utc(row["received_at"]),
    }


def declare(
    conn: DbConn,
    organisation: UUID,
    *,
    code: str,
    kg: Decimal | float | str,
    origin_country: str,
    producer: str,
    received_at: datetime,
    kind: str = "green",
    supplier: str | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    product_id: UUID | None = None,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """Declare an external lot of `organisation` and return it as `get` does.

    ValidationFailed for a bad field (country not ISO 3166-1 alpha-2, blank producer, a
    document without its SHA-256...); RuleViolation "positive_kg", "step_in_future"
    (received_at more than rules.step_clock_skew_s ahead); NotFound for a product of
    another organisation; Conflict for a lot code the organisation used already."""
    with conn.transaction():
        country = organisations.check_country(origin_country)
        who = _text(producer, "producer", 200, required=True)
        via = _text(supplier, "supplier", 200, required=False)
        docs = shipments.check_documents(documents)
        if kind not in LOT_KINDS:
            raise ValidationFailed(f"lot kind must be one of {', '.join(LOT_KINDS)}", field="kind")
        amount = to_kg(kg, field="kg")
        if amount <= 0:
            raise RuleViolation("positive_kg", "an external lot's kilograms must be more than 0")
        if amount > MAX_KG:
            raise ValidationFailed(f"kg must be at most {MAX_KG}", field="kg")
        if not isinstance(received_at, datetime) or received_at.tzinfo is None:
            raise ValidationFailed("received_at needs a time zone", field="received_at")
        now = datetime.now(UTC)
        if received_at > now + timedelta(seconds=rules.step_clock_skew_s):
            raise RuleViolation(
                "step_in_future",
                f"external lot received {received_at.isoformat()} is in the future (now is"
                f" {now.isoformat(timespec='seconds')}); declare it once it has arrived",
                occurred_at=received_at.isoformat(),
                now=now.isoformat(timespec="seconds"),
            )
        lot_id = insert_lot(
            conn, organisation, code=code, kind=kind, quantity_kg=amount, product_id=product_id
        )
        row = q.one(
            conn,
            SQL["external_insert"],
            {
                "lot_id": lot_id,
                "cooperative_id": organisation,
                "origin_country": country,
                "producer": who,
                "supplier": via,
                "documents": Jsonb(docs),
                "received_at": received_at,
            },
        )
        assert row is not None  # insert ... returning
        lot = lot_by_id(conn, lot_id)
        event = append_event(
            conn,
            organisation,
            EVENT_KIND,
            [lot_id],
            received_at,
            {"lot": lot_payload(lot), "harvests": [], "external": claim_payload(row)},
            keys=keys,
        )
        q.execute(conn, LOTS_SQL["set_lot_event"], {"id": lot_id, "seq": event["seq"]})
        q.execute(conn, SQL["external_set_event"], {"lot_id": lot_id, "seq": event["seq"]})
        statements.refresh(conn, keys, organisation, [lot_id])
        log.info("external_lot_declared lot_id=%s country=%s kg=%s", lot_id, country, amount)
        return get(conn, organisation, lot_id)


def get(conn: DbConn, organisation: UUID, lot_id: UUID) -> Row:
    """{"id", "public_id", "code", "kind", "quantity_kg", "remaining_kg", "product_id",
    "origin_country", "producer", "supplier", "documents", "received_at", "event_seq",
    "created_at"}; NotFound when it is no external lot of the organisation."""
    found = list_external(conn, organisation, lot_id=lot_id, limit=1)
    if not found:
        raise NotFound(
            f"external lot {lot_id} is not one of your organisation's", lot_id=str(lot_id)
        )
    return found[0]


def list_external(
    conn: DbConn,
    organisation: UUID,
    *,
    after: UUID | None = None,
    country: str | None = None,
    lot_id: UUID | None = None,
    limit: int = 50,
) -> list[Row]:
    """The organisation's external lots as `get` gives them, by id after `after`."""
    if country is not None:
        organisations.check_country(country)
    return q.rows(
        conn,
        SQL["external_of_organisation"],
        {
            "cooperative_id": organisation,
            "id": lot_id,
            "after": after,
            "country": country,
            "limit": limit,
        },
    )


# --- verification ---------------------------------------------------------------------
def check_lots(conn: DbConn, lot_ids: Iterable[UUID]) -> list[Row]:
    """The origin claims of the lots (those made by no transformation) against their
    lot_created events: a claim edited, added or deleted behind the application's back.
    Problems in verification's shape (seq, kind, problem, detail, record)."""
    rows = q.rows(conn, SQL["external_claims_of_lots"], {"lot_ids": list(lot_ids)})
    problems: list[Row] = []
    for r in rows:
        payload = r["payload"] if isinstance(r["payload"], dict) else {}
        recorded = payload.get("external") if r["kind"] == EVENT_KIND else None
        record = {"type": "external_lot", "id": str(r["id"])}
        where = {"seq": r["seq"], "kind": r["kind"], "record": record}
        if r["claim_lot_id"] is None:
            if recorded is not None:
                problems.append(
                    {
                        **where,
                        "problem": "row_mismatch",
                        "detail": f"lot {r['code']}: event {r['seq']} (lot_created) records an"
                        " external origin claim that is no longer in the store",
                    }
                )
            continue
        if r["seq"] is None:
            problems.append(
                {
                    **where,
                    "problem": "missing_event",
                    "detail": f"external lot {r['code']} has no lot_created event",
                }
            )
            continue
        if recorded is None or r["claim_event_seq"] != r["lot_event_seq"]:
            problems.append(
                {
                    **where,
                    "problem": "row_mismatch",
                    "detail": f"lot {r['code']} has an external origin claim that its event"
                    f" {r['seq']} ({r['kind']}) never recorded",
                }
            )
            continue
        now = claim_payload(r)
        changed = [
            field
            for field in CLAIM_FIELDS
            if canonical_json(now.get(field)) != canonical_json(recorded.get(field))
        ]
        if changed:
            problems.append(
                {
                    **where,
                    "problem": "row_mismatch",
                    "detail": f"external lot {r['code']} no longer matches event {r['seq']}"
                    f" (lot_created): {', '.join(changed)} changed",
                }
            )
    return problems


def check_chain(conn: DbConn, organisation: UUID) -> list[Row]:
    """`check_lots` of every external lot of the organisation (the whole-chain audit)."""
    ids = [
        r["lot_id"]
        for r in q.rows(conn, SQL["external_lot_ids_of_chain"], {"cooperative_id": organisation})
    ]
    return check_lots(conn, ids) if ids else []
