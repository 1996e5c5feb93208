"""Processing steps (transformations) between lots, under mass balance.

Every transformation consumes kilograms of existing lots (never beyond what is left of
them) and creates new output lots whose total is at most the inputs times the step's
maximum yield (rules.step_max_yield, trace/rules.py). An output lot is made by exactly one
transformation, which is what lets the genealogy divide a lot among its inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace import statements
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.lots import KG, LOT_KINDS, insert_lot, lot_payload, to_kg
from coffeetrace.trace.rules import DEFAULT_RULES, TraceRules
from coffeetrace.trace.variants import name_variants

SQL = load_queries("coffeetrace.trace", "processing.sql")

log = logging.getLogger(__name__)

STEPS = (
    "drying",
    "hulling",
    "wet_processing",
    "grading",
    "sorting",
    "blending",
    "roasting",
    "packing",
    "shipping",
    "receiving",
    "splitting",
    "merging",
    "cherry_to_green",
)


def _cherry_behind(locked: dict[UUID, Row], ins: dict[UUID, Decimal]) -> Decimal | None:
    """Fresh-cherry kg behind the inputs taken; None when a lot does not know its own."""
    total = Decimal(0)
    for lot_id, kg in ins.items():
        lot = locked[lot_id]
        if lot["cherry_equiv_kg"] is None or lot["quantity_kg"] <= 0:
            return None
        total += kg * lot["cherry_equiv_kg"] / lot["quantity_kg"]
    return total


def _check_cherry_yield(
    outs: list[Row], output_kg: Decimal, cherry: Decimal | None, caps: Mapping[str, float]
) -> None:
    """Yields compound: whatever the steps, a green lot weighs at most 0.25 of its cherry."""
    if cherry is None:
        return
    for kind in sorted({o["kind"] for o in outs if o["kind"] in caps}, key=lambda k: caps[k]):
        cap = Decimal(str(caps[kind]))
        if output_kg > cherry * cap:
            max_out = (cherry * cap).quantize(Decimal("0.001"))
            raise RuleViolation(
                "cherry_yield",
                f"{output_kg} kg of {kind} from {cherry.quantize(KG)} kg of fresh"
                f" cherry is more than {cap} of it allows ({max_out} kg) over"
                " all steps",
                kind=kind,
                output_kg=str(output_kg),
                cherry_kg=str(cherry.quantize(KG)),
                max_yield=float(cap),
                max_output_kg=str(max_out),
            )


def record_transformation(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    step: str,
    occurred_at: datetime,
    inputs: Sequence[tuple[UUID, Decimal | float]],
    outputs: Sequence[Mapping[str, Any]],
    place: str | None = None,
    measurements: Mapping[str, Any] | None = None,
    evidence: Sequence[Mapping[str, Any]] | None = None,
    place_i18n: Mapping[str, str] | None = None,
    max_yield: Mapping[str, float] | None = None,
    max_yield_from_cherry: Mapping[str, float] | None = None,
    rules: TraceRules = DEFAULT_RULES,
    keys: KeyRing,
) -> Row:
    """Record one processing step and create its output lots.

    inputs: [(lot_id, kg)], each lot of this cooperative with at least kg remaining.
    outputs: [{"code": str, "kg": number, "kind": lot kind, "product_id": UUID (optional)}].
    measurements: free JSON object, e.g. {"moisture_pct": 12.1, "screen_size": 18,
    "defect_count": 4, "roast_level": "medium", "cupping_score": 84.5}.
    evidence: list of JSON objects, e.g. [{"type": "certificate", "name": ..., "url": ...,
    "sha256": ...}].
    max_yield: per-step maximum output/input ratio; default rules.step_max_yield
    (the step must be one of its keys).
    max_yield_from_cherry: per output kind, most kg per kg of fresh cherry behind the
    inputs over all steps so far; default rules.kind_max_yield_from_cherry.
    rules: the configured rules (TraceRules.from_settings); default the physical ones.
    Returns {"transformation": {"id", "cooperative_id", "step", "occurred_at", "place",
    "measurements", "evidence", "input_kg": Decimal, "output_kg": Decimal, "created_at",
    "inputs": [{"lot_id", "kg"}], "outputs": [{"lot_id", "kg"}]},
    "outputs": [lot dict (see lots.py)]}.
    Raises RuleViolation (422): "unknown_step", "mass_balance" (figures step, input_kg,
    output_kg, max_yield, max_output_kg), "lot_overdrawn" (lot_id, code, requested_kg,
    remaining_kg), "cherry_yield" (kind, output_kg, cherry_kg, max_yield, max_output_kg),
    "no_inputs", "no_outputs", "positive_kg", "duplicate_input", "step_before_inputs"
    (occurred_at before an input lot came to be: its own step, or its latest harvest;
    figures occurred_at, inputs_ready_at, lot_id, code), "step_in_future" (occurred_at
    more than rules.step_clock_skew_s ahead of now; figures occurred_at, now);
    NotFound for a lot of another cooperative; Conflict for a reused output code.
    Appends a "transformation" trace event (signed with the cooperative's key from
    `keys`) and signs the statements of the input and output lots (statements.py).
    """
    # a savepoint inside the caller's transaction (a transaction in autocommit mode): a
    # refused step leaves nothing behind and the caller's transaction usable
    with conn.transaction():
        return _record(
            conn,
            cooperative_id,
            step=step,
            occurred_at=occurred_at,
            inputs=inputs,
            outputs=outputs,
            place=place,
            place_i18n=name_variants(place_i18n, "place_i18n"),
            measurements=measurements,
            evidence=evidence,
            max_yield=rules.step_max_yield if max_yield is None else max_yield,
            max_yield_from_cherry=rules.kind_max_yield_from_cherry
            if max_yield_from_cherry is None
            else max_yield_from_cherry,
            clock_skew_s=rules.step_clock_skew_s,
            keys=keys,
        )


def _record(
    conn: DbConn,
    cooperative_id: UUID,
    *,
    step: str,
    occurred_at: datetime,
    inputs: Sequence[tuple[UUID, Decimal | float]],
    outputs: Sequence[Mapping[str, Any]],
    place: str | None,
    place_i18n: dict[str, str] | None,
    measurements: Mapping[str, Any] | None,
    evidence: Sequence[Mapping[str, Any]] | None,
    max_yield: Mapping[str, float],
    max_yield_from_cherry: Mapping[str, float],
    clock_skew_s: float,
    keys: KeyRing,
) -> Row:
    yields = max_yield
    if step not in yields:
        raise RuleViolation(
            "unknown_step",
            f"unknown processing step {step!r}; known steps: {', '.join(sorted(yields))}",
            step=step,
        )
    if occurred_at.tzinfo is None:
        raise ValidationFailed("occurred_at needs a time zone", field="occurred_at")
    now = datetime.now(UTC)
    if occurred_at > now + timedelta(seconds=clock_skew_s):
        raise RuleViolation(
            "step_in_future",
            f"{step} dated {occurred_at.isoformat()} is in the future (now is"
            f" {now.isoformat(timespec='seconds')}); record a step once it has happened",
            occurred_at=occurred_at.isoformat(),
            now=now.isoformat(timespec="seconds"),
        )
    ins = _inputs(inputs)
    outs = _outputs(outputs)
    input_kg = sum(ins.values(), Decimal("0"))
    output_kg = sum((o["kg"] for o in outs), Decimal("0"))
    ratio = Decimal(str(yields[step]))
    max_output = (input_kg * ratio).quantize(Decimal("0.001"))
    if output_kg > input_kg * ratio:
        raise RuleViolation(
            "mass_balance",
            f"{step}: {output_kg} kg out of {input_kg} kg in is more than the"
            f" step's maximum yield {ratio} allows ({max_output} kg)",
            step=step,
            input_kg=str(input_kg),
            output_kg=str(output_kg),
            max_yield=float(ratio),
            max_output_kg=str(max_output),
        )
    locked = {
        r["id"]: r
        for r in q.rows(
            conn, SQL["lock_input_lots"], {"ids": list(ins), "cooperative_id": cooperative_id}
        )
    }
    for lot_id, kg in ins.items():
        lot = locked.get(lot_id)
        if lot is None:
            raise NotFound("an input lot is not a lot of this cooperative", lot_id=str(lot_id))
        if kg > lot["remaining_kg"]:
            raise RuleViolation(
                "lot_overdrawn",
                f"lot {lot['code']} has {lot['remaining_kg']} kg left, {kg} kg were asked for",
                lot_id=str(lot_id),
                code=lot["code"],
                requested_kg=str(kg),
                remaining_kg=str(lot["remaining_kg"]),
            )
    _check_after_inputs(step, occurred_at, [locked[lot_id] for lot_id in ins])
    cherry = _cherry_behind(locked, ins)
    _check_cherry_yield(outs, output_kg, cherry, max_yield_from_cherry)
    for lot_id, kg in ins.items():
        q.execute(conn, SQL["consume_lot"], {"id": lot_id, "kg": kg})
    t = q.one(
        conn,
        SQL["insert_transformation"],
        dict(
            cooperative_id=cooperative_id,
            step=step,
            occurred_at=occurred_at,
            place=place,
            place_i18n=Jsonb(place_i18n) if place_i18n else None,
            measurements=Jsonb(jsonable(dict(measurements or {}))),
            evidence=Jsonb(jsonable(list(evidence or []))),
            input_kg=input_kg,
            output_kg=output_kg,
        ),
    )
    assert t is not None
    q.execute(
        conn,
        SQL["insert_inputs"],
        {"transformation_id": t["id"], "lot_ids": list(ins), "kgs": list(ins.values())},
    )
    froms = [lot["harvest_from"] for lot in locked.values() if lot["harvest_from"]]
    tos = [lot["harvest_to"] for lot in locked.values() if lot["harvest_to"]]
    out_ids = [
        insert_lot(
            conn,
            cooperative_id,
            code=o["code"],
            kind=o["kind"],
            quantity_kg=o["kg"],
            product_id=o.get("product_id"),
            produced_by=t["id"],
            harvest_from=min(froms, default=None),
            harvest_to=max(tos, default=None),
            cherry_equiv_kg=None
            if cherry is None
            else (cherry * o["kg"] / output_kg).quantize(Decimal("0.000001")),
        )
        for o in outs
    ]
    q.execute(
        conn,
        SQL["insert_outputs"],
        {"transformation_id": t["id"], "lot_ids": out_ids, "kgs": [o["kg"] for o in outs]},
    )
    out_lots = [lot_by_id(conn, lot_id) for lot_id in out_ids]
    event = append_event(
        conn,
        cooperative_id,
        "transformation",
        [*ins, *out_ids],
        occurred_at,
        {
            "transformation_id": str(t["id"]),
            "step": step,
            "occurred_at": occurred_at,
            "place": place,
            # only when given (migration 0052): earlier events keep their form
            **({"place_i18n": place_i18n} if place_i18n else {}),
            "measurements": t["measurements"],
            "evidence": t["evidence"],
            "input_kg": str(input_kg),
            "output_kg": str(output_kg),
            "inputs": [{"lot_id": str(lot_id), "kg": str(kg)} for lot_id, kg in ins.items()],
            "outputs": [{**lot_payload(lot), "kg": str(lot["quantity_kg"])} for lot in out_lots],
        },
        keys=keys,
    )
    q.execute(conn, SQL["set_transformation_event"], {"id": t["id"], "seq": event["seq"]})
    # the inputs' documents list this event too: their statements move with it
    statements.refresh(conn, keys, cooperative_id, [*ins, *out_ids])
    log.info(
        "transformation_recorded id=%s step=%s input_kg=%s output_kg=%s",
        t["id"],
        step,
        input_kg,
        output_kg,
    )
    return {
        "transformation": get_transformation(conn, cooperative_id, t["id"]),
        "outputs": out_lots,
    }


def _check_after_inputs(step: str, occurred_at: datetime, lots: list[Row]) -> None:
    """A step cannot happen before its newest input lot came to be."""
    newest = max(lots, key=lambda lot: lot["ready_at"])
    if occurred_at < newest["ready_at"]:
        ready = newest["ready_at"].isoformat()
        raise RuleViolation(
            "step_before_inputs",
            f"{step} dated {occurred_at.isoformat()} is before its input lot"
            f" {newest['code']} came to be ({ready}: its latest harvest or the step that"
            " made it); a step cannot happen before its inputs",
            occurred_at=occurred_at.isoformat(),
            inputs_ready_at=ready,
            lot_id=str(newest["id"]),
            code=newest["code"],
        )


def _inputs(inputs: Sequence[tuple[UUID, Any]]) -> dict[UUID, Decimal]:
    if not inputs:
        raise RuleViolation("no_inputs", "a transformation needs at least one input lot")
    ins: dict[UUID, Decimal] = {}
    for lot_id, kg in inputs:
        lot_uuid = UUID(str(lot_id))
        amount = to_kg(kg, field="inputs.kg")
        if amount <= 0:
            raise RuleViolation(
                "positive_kg",
                "input kilograms must be more than 0",
                lot_id=str(lot_uuid),
                kg=str(amount),
            )
        if lot_uuid in ins:
            raise RuleViolation(
                "duplicate_input", "a lot appears twice among the inputs", lot_id=str(lot_uuid)
            )
        ins[lot_uuid] = amount
    return ins


def _outputs(outputs: Sequence[Mapping[str, Any]]) -> list[Row]:
    if not outputs:
        raise RuleViolation("no_outputs", "a transformation needs at least one output lot")
    outs = []
    for o in outputs:
        if not o.get("code"):
            raise ValidationFailed("each output needs a lot code", field="outputs.code")
        kind = o.get("kind") or "green"
        if kind not in LOT_KINDS:
            raise ValidationFailed(
                f"output kind must be one of {', '.join(LOT_KINDS)}", field="outputs.kind"
            )
        kg = to_kg(o.get("kg", 0), field="outputs.kg")
        if kg <= 0:
            raise RuleViolation(
                "positive_kg", "output kilograms must be more than 0", code=o["code"], kg=str(kg)
            )
        outs.append(
            {"code": str(o["code"]), "kind": kind, "kg": kg, "product_id": o.get("product_id")}
        )
    return outs


def get_transformation(conn: DbConn, cooperative_id: UUID, transformation_id: UUID) -> Row:
    """The "transformation" dict described in record_transformation; NotFound otherwise."""
    t = q.one(conn, SQL["get_transformation"], {"id": transformation_id})
    if t is None or t["cooperative_id"] != cooperative_id:
        raise NotFound(
            "no such transformation in this cooperative", transformation_id=str(transformation_id)
        )
    for side in ("inputs", "outputs"):
        t[side] = [{"lot_id": UUID(x["lot_id"]), "kg": to_kg(x["kg"])} for x in t[side]]
    return t
