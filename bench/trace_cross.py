"""`coffeetrace bench trace`'s cross-organisation case: a retail lot whose backward trace
crosses 4 organisations and 8 shipments, over a lot fed by `fed` trees of the same store.

Built with the real functions: the cooperative makes green lots of its own trees (cherry
lots of 100 trees, drying, hulling in pairs, grading by ten); it ships them to an exporter
in 4 shipments (each a quarter of every green lot), the exporter ships its 4 lots on to an
importer in 2 shipments, the importer its 2 to a roaster in 2 more; the roaster blends
them, roasts and packs. The retail lot's backward trace (genealogy.py, and the roaster's
view of it, trail.py) is timed against fetching the same answer rows by id, in the same
run, as the single-organisation case is; its verification checks all four chains.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from coffeetrace.settings import DEFAULT_STEP_MAX_YIELD
from coffeetrace.trace import (
    batches,
    cooperatives,
    genealogy,
    lots,
    organisations,
    partners,
    processing,
    shipments,
    trail,
    verification,
)
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id

Row = dict[str, Any]
CHERRY_LOT_TREES = 100
SHIPMENTS = 8
ORGANISATIONS = 4
DOWNSTREAM = (
    ("bench-export", "exporter"),
    ("bench-import", "importer"),
    ("bench-roast", "roaster"),
)
START = datetime(2025, 12, 1, tzinfo=UTC)  # after the store's harvests, not in the future


def _chunks(items: list[Row], n: int) -> list[list[Row]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def build_cross_trail(
    conn: psycopg.Connection, coop_id: uuid.UUID, harvest_ids: list[Any], keys: KeyRing
) -> Row:
    """The retail lot and the organisations of the trail: {"packed", "organisations"}."""
    batches.seal_harvests(conn, keys, harvest_ids)

    def step(
        org: uuid.UUID,
        name: str,
        groups: list[list[Row]],
        outs: Callable[[int, Decimal], list[Row]],
        day: int,
    ) -> list[Row]:
        made = []
        for g, group in enumerate(groups):
            total = sum((x["quantity_kg"] for x in group), Decimal(0))
            made.extend(
                processing.record_transformation(
                    conn,
                    org,
                    step=name,
                    occurred_at=START + timedelta(days=day),
                    inputs=[(x["id"], x["quantity_kg"]) for x in group],
                    outputs=outs(g, total),
                    max_yield=DEFAULT_STEP_MAX_YIELD,
                    keys=keys,
                )["outputs"]
            )
        return made

    cherry = [
        lots.build_cherry_lot(conn, coop_id, code=f"XC-{i}", harvest_ids=part, keys=keys)
        for i, part in enumerate(
            harvest_ids[i : i + CHERRY_LOT_TREES]
            for i in range(0, len(harvest_ids), CHERRY_LOT_TREES)
        )
    ]
    dried = step(
        coop_id,
        "drying",
        [[c] for c in cherry],
        lambda g, kg: [{"code": f"XD-{g}", "kg": kg / 2, "kind": "dried_cherry"}],
        1,
    )
    hulled = step(
        coop_id,
        "hulling",
        _chunks(dried, 2),
        lambda g, kg: [{"code": f"XH-{g}", "kg": kg / 2, "kind": "green"}],
        2,
    )
    green = step(
        coop_id,
        "grading",
        _chunks(hulled, 10),
        lambda g, kg: [{"code": f"XG-{g}", "kg": kg * Decimal("0.95"), "kind": "green"}],
        3,
    )
    orgs = [coop_id]
    for code, role in DOWNSTREAM:
        orgs.append(cooperatives.create_cooperative(conn, code, code, keys=keys)["id"])
        organisations.set_roles(conn, code, [role])
    for a, b in zip(orgs, orgs[1:], strict=False):
        partners.accept(conn, b, partners.propose(conn, a, str(b), keys=keys)["id"], keys=keys)

    def ship(sender: uuid.UUID, receiver: uuid.UUID, lines: list[tuple[Row, Decimal]],
             code: str, day: int) -> Row:  # fmt: skip
        sent = shipments.create(
            conn,
            sender,
            str(receiver),
            departed_at=START + timedelta(days=day),
            departure_place="bench warehouse",
            lines=[(lot["id"], kg) for lot, kg in lines],
            keys=keys,
        )
        done = shipments.accept(
            conn,
            receiver,
            sent["id"],
            received_at=START + timedelta(days=day + 1),
            arrival_place="bench store",
            lines=[
                {"line": n, "received_kg": kg, "code": code}
                for n, (_, kg) in enumerate(lines, start=1)
            ],
            keys=keys,
        )
        return lot_by_id(conn, done["lines"][0]["receiver_lot"]["id"])

    # a quarter of every green lot in each of 4 shipments (the last takes what is left)
    quarters: list[list[tuple[Row, Decimal]]] = [[] for _ in range(4)]
    for lot in green:
        part = (lot["quantity_kg"] / 4).quantize(Decimal("0.001"))
        for i in range(4):
            quarters[i].append((lot, part if i < 3 else lot["quantity_kg"] - 3 * part))
    exported = [ship(orgs[0], orgs[1], q, f"XE-{i}", 4) for i, q in enumerate(quarters)]
    imported = [
        ship(orgs[1], orgs[2], [(x, x["quantity_kg"]) for x in pair], f"XI-{j}", 6)
        for j, pair in enumerate(_chunks(exported, 2))
    ]
    received = [ship(orgs[2], orgs[3], [(x, x["quantity_kg"])], f"XR-{j}", 8)
                for j, x in enumerate(imported)]  # fmt: skip
    blended = step(
        orgs[3],
        "blending",
        [received],
        lambda g, kg: [{"code": "XB-1", "kg": kg, "kind": "blend"}],
        10,
    )
    roasted = step(
        orgs[3],
        "roasting",
        [blended],
        lambda g, kg: [{"code": "XO-1", "kg": kg * Decimal("0.84"), "kind": "roasted"}],
        11,
    )
    packed = step(
        orgs[3],
        "packing",
        [roasted],
        lambda g, kg: [{"code": "XP-1", "kg": kg, "kind": "packed"}],
        12,
    )
    conn.commit()
    return {"packed": packed[0], "organisations": orgs}


def measure_cross(
    conn: psycopg.Connection,
    built: Row,
    keys: KeyRing,
    repeat: int,
    timed: Callable[[Callable[[], Any], int], tuple[float, Any]],
    ceiling_backward: Callable[[psycopg.Connection, Row], Callable[[], int]],
) -> Row:
    """The retail lot's backward trace, the roaster's view of it and its verification,
    against fetching the trace's answer rows by id."""
    packed = built["packed"]
    back_ms, back = timed(lambda: genealogy.trace_backward(conn, packed["id"]), repeat)
    ceil_ms, rows = timed(ceiling_backward(conn, back), repeat)
    roaster = built["organisations"][-1]
    view_ms, _ = timed(lambda: trail.backward_for(conn, roaster, packed["id"]), repeat)
    report = verification.verify_lot(conn, packed["id"], keys=keys)
    crossed = {r["cooperative_id"] for r in back["lots"]}
    receivings = sum(1 for t in back["transformations"] if t["step"] == "receiving")
    return {
        "cross_backward_ms": round(back_ms, 2),
        "cross_backward_ceiling_ms": round(ceil_ms, 2),
        "cross_backward_ratio": round(back_ms / ceil_ms, 2),
        "cross_backward_rows": rows,
        "cross_view_ms": round(view_ms, 2),
        "cross_view_ratio": round(view_ms / ceil_ms, 2),
        "cross_trees": len(back["trees"]),
        "cross_lots": len(back["lots"]),
        "cross_organisations": len(crossed),
        "cross_shipments": receivings,
        "cross_shares_sum": round(sum(t["share"] for t in back["trees"]), 12),
        "cross_verify_ok": report["ok"],
        "cross_verify_problems": len(report["problems"]),
    }
