"""Cherry lots built from harvest events, and looking lots up.

A harvest's kilograms are consumed at most once: a cherry lot takes all of what is
left of a harvest or a stated part of it, and the remainder stays available.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from coffeetrace.credentials import new_public_id
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import batches, records, statements
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.plausibility import record_flags_for_lot
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules

SQL = load_queries("coffeetrace.trace", "lots.sql")

log = logging.getLogger(__name__)
KG = Decimal("0.001")
LOT_KINDS = ("cherry", "dried_cherry", "green", "roasted", "packed", "blend")

# Lot dict (every function of this module returns this shape):
# {"id": UUID, "public_id": str, "cooperative_id": UUID, "cooperative_code": str,
#  "code": str, "product_id": UUID|None, "product_name": str|None, "gtin": str|None,
#  "kind": "cherry"|"dried_cherry"|"green"|"roasted"|"packed"|"blend",
#  "quantity_kg": Decimal, "remaining_kg": Decimal (not yet consumed by a transformation),
#  "harvest_from": date|None, "harvest_to": date|None, "created_at": datetime,
#  "produced_by": UUID|None (the transformation that made it; None for cherry lots),
#  "cherry_equiv_kg": Decimal|None (fresh-cherry kg behind the lot, for compound yields)}


def to_kg(value: Decimal | float | int | str, *, field: str = "kg") -> Decimal:
    """Kilograms as a Decimal with gram resolution, refusing non-numbers."""
    try:
        kg = Decimal(str(value)).quantize(KG)
    except Exception as exc:
        raise ValidationFailed(f"{field} must be a number of kilograms", field=field) from exc
    if not kg.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", field=field)
    return kg


def insert_lot(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    code: str,
    kind: str,
    quantity_kg: Decimal,
    product_id: UUID | None = None,
    produced_by: UUID | None = None,
    harvest_from: Any = None,
    harvest_to: Any = None,
    cherry_equiv_kg: Decimal | None = None,
) -> UUID:
    """Insert one lot row (all of it remaining); translates constraint errors."""
    if kind not in LOT_KINDS:
        raise ValidationFailed(f"lot kind must be one of {', '.join(LOT_KINDS)}", field="kind")
    if (
        product_id is not None
        and q.one(
            conn,
            SQL["product_of_cooperative"],
            {"id": product_id, "cooperative_id": cooperative_id},
        )
        is None
    ):
        raise NotFound("product_id does not name a product of this cooperative", field="product_id")
    try:
        with conn.transaction():  # a savepoint, so the error leaves the caller's transaction usable
            row = q.one(
                conn,
                SQL["insert_lot"],
                dict(
                    public_id=new_public_id(),
                    cooperative_id=cooperative_id,
                    code=code,
                    product_id=product_id,
                    kind=kind,
                    quantity_kg=quantity_kg,
                    produced_by=produced_by,
                    harvest_from=harvest_from,
                    harvest_to=harvest_to,
                    cherry_equiv_kg=quantity_kg
                    if kind == "cherry" and produced_by is None
                    else cherry_equiv_kg,
                ),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(
            f"lot code {code!r} is already used in this cooperative", field="code", code=code
        ) from exc
    except psycopg.errors.CheckViolation as exc:
        raise ValidationFailed(
            f"lot {code!r} refused by {exc.diag.constraint_name}: a lot code is 1-20 characters"
            " of letters, digits, '_', '.', '-' (GS1 batch/lot)",
            field="code",
        ) from exc
    assert row is not None
    lot_id: UUID = row["id"]
    return lot_id


def _select_harvests(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    harvest_ids: Sequence[UUID] | None,
    tree_ids: Sequence[UUID] | None,
    plot_ids: Sequence[UUID] | None,
    farm_ids: Sequence[UUID] | None,
    since: datetime | None,
    until: datetime | None,
    harvest_kg: Mapping[UUID, Any] | None,
) -> list[Row]:
    """The chosen harvests with the kilograms each gives to the lot ("kg")."""
    parts = {UUID(str(k)): to_kg(v, field="harvest_kg") for k, v in (harvest_kg or {}).items()}
    if harvest_ids is not None or parts:
        ids = list(dict.fromkeys([*(harvest_ids or []), *parts]))
        found = q.rows(conn, SQL["harvests_by_ids"], {"cooperative_id": cooperative_id, "ids": ids})
        missing = set(map(str, ids)) - {str(h["harvest_id"]) for h in found}
        if missing:
            raise NotFound(
                f"{len(missing)} harvest id(s) are not harvests of this cooperative",
                harvest_ids=sorted(missing)[:20],
            )
        for h in found:
            part = parts.get(h["harvest_id"])
            if part is not None and part <= 0:
                raise RuleViolation(
                    "positive_kg",
                    "a harvest part must be more than 0 kg",
                    harvest_id=str(h["harvest_id"]),
                    requested_kg=str(part),
                )
            if h["remaining_kg"] <= 0:
                raise RuleViolation(
                    "harvest_consumed",
                    f"harvest {h['harvest_id']} is already fully in other lots",
                    harvest_id=str(h["harvest_id"]),
                    harvest_kg=str(h["cherry_kg"]),
                    remaining_kg="0.000",
                )
            if part is not None and part > h["remaining_kg"]:
                raise RuleViolation(
                    "harvest_overdrawn",
                    f"harvest {h['harvest_id']} has {h['remaining_kg']} kg left,"
                    f" {part} kg were asked for",
                    harvest_id=str(h["harvest_id"]),
                    requested_kg=str(part),
                    remaining_kg=str(h["remaining_kg"]),
                    harvest_kg=str(h["cherry_kg"]),
                )
            h["kg"] = part if part is not None else h["remaining_kg"]
        return found
    if not (tree_ids or plot_ids or farm_ids):
        raise ValidationFailed(
            "choose harvests by harvest_ids, or by tree_ids, plot_ids or"
            " farm_ids (with since/until)",
            field="harvest_ids",
        )
    found = q.rows(
        conn,
        SQL["harvests_by_selection"],
        dict(
            cooperative_id=cooperative_id,
            tree_ids=list(tree_ids or []),
            plot_ids=list(plot_ids or []),
            farm_ids=list(farm_ids or []),
            since=since,
            until=until,
        ),
    )
    chosen = [h for h in found if h["remaining_kg"] > 0]
    for h in chosen:
        h["kg"] = h["remaining_kg"]
    return chosen


def build_cherry_lot(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    code: str,
    harvest_ids: Sequence[UUID] | None = None,
    tree_ids: Sequence[UUID] | None = None,
    plot_ids: Sequence[UUID] | None = None,
    farm_ids: Sequence[UUID] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    product_id: UUID | None = None,
    harvest_kg: Mapping[UUID, Decimal | float] | None = None,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """Create a cherry lot from harvest events and return the lot dict (see module).

    Harvests are chosen by `harvest_ids`, or by any of `tree_ids`/`plot_ids`/`farm_ids`
    within [since, until) (harvests with nothing left are skipped). Each chosen harvest
    contributes what is left of it, or the part `harvest_kg[harvest_id]` when given (the
    keys of harvest_kg are chosen too). The lot dict has an extra key
    "harvests": [{"harvest_id", "harvest_time", "tree_id", "kg": Decimal}].
    Raises RuleViolation (422) "harvest_overdrawn" (a part above what is left, figures
    harvest_id/requested_kg/remaining_kg), "harvest_consumed" (named harvest has nothing
    left), "no_harvests" (selection is empty), "harvest_unverified" (a harvest no longer
    matches what ingest committed to its batch: edited behind the application's back;
    figures harvest_ids, problems); NotFound when a harvest id is not this
    cooperative's; Conflict when the code is already used in the cooperative.
    Appends a "lot_created" trace event (signed with the cooperative's key from `keys`)
    pinning each harvest's record leaf, records plausibility flags (by `rules`), and
    signs the lot's statement (statements.py).
    """
    # a savepoint inside the caller's transaction (a transaction in autocommit mode): a
    # refused lot leaves nothing behind and the caller's transaction usable
    with conn.transaction():
        return _build_cherry_lot(
            conn,
            cooperative_id,
            code=code,
            harvest_ids=harvest_ids,
            tree_ids=tree_ids,
            plot_ids=plot_ids,
            farm_ids=farm_ids,
            since=since,
            until=until,
            product_id=product_id,
            harvest_kg=harvest_kg,
            rules=rules,
            keys=keys,
        )


def _build_cherry_lot(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    code: str,
    harvest_ids: Sequence[UUID] | None,
    tree_ids: Sequence[UUID] | None,
    plot_ids: Sequence[UUID] | None,
    farm_ids: Sequence[UUID] | None,
    since: datetime | None,
    until: datetime | None,
    product_id: UUID | None,
    harvest_kg: Mapping[UUID, Decimal | float] | None,
    rules: TraceRules,
    keys: KeyRing,
) -> Row:
    q.one(conn, SQL["lock_harvests"], {"cooperative_id": str(cooperative_id)})
    chosen = _select_harvests(
        conn,
        cooperative_id,
        harvest_ids=harvest_ids,
        tree_ids=tree_ids,
        plot_ids=plot_ids,
        farm_ids=farm_ids,
        since=since,
        until=until,
        harvest_kg=harvest_kg,
    )
    if not chosen:
        raise RuleViolation(
            "no_harvests",
            "no harvest with kilograms left matches the selection",
            since=since and since.isoformat(),
            until=until and until.isoformat(),
        )
    leaves = _checked_leaves(conn, [h["harvest_id"] for h in chosen])
    total = sum((h["kg"] for h in chosen), Decimal("0"))
    times = [h["harvest_time"] for h in chosen]
    lot_id = insert_lot(
        conn,
        cooperative_id,
        code=code,
        kind="cherry",
        quantity_kg=total,
        product_id=product_id,
        harvest_from=min(times).astimezone(UTC).date(),
        harvest_to=max(times).astimezone(UTC).date(),
    )
    q.execute(
        conn,
        SQL["insert_lot_harvests"],
        dict(
            lot_id=lot_id,
            harvest_ids=[h["harvest_id"] for h in chosen],
            times=times,
            tree_ids=[h["tree_id"] for h in chosen],
            kgs=[h["kg"] for h in chosen],
        ),
    )
    lot = lot_by_id(conn, lot_id)
    event = append_event(
        conn,
        cooperative_id,
        "lot_created",
        [lot_id],
        max(times),
        {
            "lot": lot_payload(lot),
            # [harvest id, kg taken, tree id, the harvest record's leaf in its batch]
            "harvests": [
                [str(h["harvest_id"]), str(h["kg"]), str(h["tree_id"]), leaves[h["harvest_id"]]]
                for h in chosen
            ],
        },
        keys=keys,
    )
    q.execute(conn, SQL["set_lot_event"], {"id": lot_id, "seq": event["seq"]})
    record_flags_for_lot(conn, lot_id, rules=rules)
    statements.refresh(conn, keys, cooperative_id, [lot_id])
    log.info(
        "cherry_lot_built lot_id=%s code=%s harvests=%s kg=%s", lot_id, code, len(chosen), total
    )
    lot["harvests"] = [
        {k: h[k] for k in ("harvest_id", "harvest_time", "tree_id", "kg")} for h in chosen
    ]
    return lot


def _checked_leaves(conn: DbConn, harvest_ids: list[UUID]) -> dict[UUID, str]:
    """Each harvest's record leaf (hex), after checking the harvests still match what
    ingest committed: a lot never takes kilograms invented behind the application's back."""
    problems = batches.verify_harvests(conn, harvest_ids)
    if problems:
        raise RuleViolation(
            "harvest_unverified",
            f"{len(problems)} harvest(s) no longer match what ingest recorded: "
            + problems[0]["detail"],
            harvest_ids=sorted({str(p["record"]["id"]) for p in problems})[:20],
        )
    rows = q.rows(conn, SQL["harvest_rows_by_ids"], {"ids": harvest_ids})
    return {r["id"]: records.harvest_leaf(r).hex() for r in rows}


def lot_payload(lot: Row) -> Row:
    """The lot fields a trace event records (and verification compares)."""
    return {
        "id": str(lot["id"]),
        "public_id": lot["public_id"],
        "code": lot["code"],
        "kind": lot["kind"],
        "quantity_kg": str(lot["quantity_kg"]),
        "product_id": str(lot["product_id"]) if lot["product_id"] else None,
        "cherry_equiv_kg": None if lot["cherry_equiv_kg"] is None else str(lot["cherry_equiv_kg"]),
    }


def harvest_remaining(
    conn: DbConn, cooperative_id: UUID, harvest_ids: Sequence[UUID]
) -> dict[UUID, Decimal]:
    """Kilograms of each harvest not yet put into a cherry lot, by harvest id."""
    found = q.rows(
        conn, SQL["harvests_by_ids"], {"cooperative_id": cooperative_id, "ids": list(harvest_ids)}
    )
    return {h["harvest_id"]: h["remaining_kg"] for h in found}
