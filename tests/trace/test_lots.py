"""Cherry lots from harvests: selection, partial consumption, the consume-once rule."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import lot_lookup, lots, registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world
from tests.trace.builders import T0, harvest_trees, insert_harvest


def test_harvest_consumed_in_parts_with_remainder_tracked(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=1)
    h = insert_harvest(conn, w.trees[0], "12.5")
    first = lots.build_cherry_lot(conn, w.coop["id"], code="A", harvest_kg={h: 5}, keys=keys)
    assert first["quantity_kg"] == Decimal("5.000")
    assert lots.harvest_remaining(conn, w.coop["id"], [h]) == {h: Decimal("7.500")}
    with pytest.raises(RuleViolation) as exc:
        lots.build_cherry_lot(conn, w.coop["id"], code="B", harvest_kg={h: 8}, keys=keys)
    assert exc.value.rule == "harvest_overdrawn"
    assert exc.value.details["remaining_kg"] == "7.500"
    assert exc.value.details["requested_kg"] == "8.000"
    rest = lots.build_cherry_lot(conn, w.coop["id"], code="C", harvest_ids=[h], keys=keys)
    assert rest["quantity_kg"] == Decimal("7.500")
    with pytest.raises(RuleViolation) as exc:
        lots.build_cherry_lot(conn, w.coop["id"], code="D", harvest_ids=[h], keys=keys)
    assert exc.value.rule == "harvest_consumed"
    assert exc.value.status_code == 422


def test_selection_by_trees_plots_farms_and_window(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=3)
    early = harvest_trees(conn, w.trees, 4, start=T0)
    late = harvest_trees(conn, w.trees, 3, start=T0 + timedelta(days=10))
    by_tree = lots.build_cherry_lot(
        conn,
        w.coop["id"],
        code="T",
        tree_ids=[w.trees[0]["id"]],
        until=T0 + timedelta(days=1),
        keys=keys,
    )
    assert [h["harvest_id"] for h in by_tree["harvests"]] == [early[0]]
    by_plot = lots.build_cherry_lot(
        conn,
        w.coop["id"],
        code="P",
        plot_ids=[w.plot["id"]],
        until=T0 + timedelta(days=1),
        keys=keys,
    )
    # the tree's harvest already in lot T is skipped, the rest of the window is taken
    assert {h["harvest_id"] for h in by_plot["harvests"]} == set(early[1:])
    by_farm = lots.build_cherry_lot(
        conn,
        w.coop["id"],
        code="F",
        farm_ids=[w.farm["id"]],
        since=T0 + timedelta(days=5),
        keys=keys,
    )
    assert {h["harvest_id"] for h in by_farm["harvests"]} == set(late)
    assert by_farm["quantity_kg"] == Decimal("9.000")
    assert by_farm["harvest_from"] == (T0 + timedelta(days=10)).date()
    with pytest.raises(RuleViolation) as exc:
        lots.build_cherry_lot(conn, w.coop["id"], code="G", farm_ids=[w.farm["id"]], keys=keys)
    assert exc.value.rule == "no_harvests"


def test_other_cooperatives_harvests_cannot_be_taken(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    mine = make_world(conn, keys=keys, trees=1)
    theirs = make_world(conn, keys=keys, trees=1, lon=108.2)
    h = insert_harvest(conn, theirs.trees[0], 5)
    with pytest.raises(NotFound):
        lots.build_cherry_lot(conn, mine.coop["id"], code="X", harvest_ids=[h], keys=keys)
    with pytest.raises(RuleViolation):
        lots.build_cherry_lot(
            conn, mine.coop["id"], code="X", tree_ids=[theirs.trees[0]["id"]], keys=keys
        )


def test_lot_codes_and_lookups(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=2)
    product = registry.create_product(conn, w.coop["id"], "Green", keys=keys, gtin="08930000000026")
    h1, h2 = harvest_trees(conn, w.trees, 4)
    lot = lots.build_cherry_lot(
        conn, w.coop["id"], code="L-1", harvest_ids=[h1], product_id=product["id"], keys=keys
    )
    with pytest.raises(Conflict):
        lots.build_cherry_lot(conn, w.coop["id"], code="L-1", harvest_ids=[h2], keys=keys)
    with pytest.raises(ValidationFailed):
        lots.build_cherry_lot(conn, w.coop["id"], code="has space", harvest_ids=[h2], keys=keys)
    assert lot_lookup.lot_by_public_id(conn, lot["public_id"])["id"] == lot["id"]  # type: ignore[index]
    assert lot_lookup.lot_by_gtin_and_code(conn, "08930000000026", "L-1")["id"] == lot["id"]  # type: ignore[index]
    assert lot_lookup.lot_by_gtin_and_code(conn, "08930000000026", "nope") is None
    assert lot_lookup.find_lot(conn, "L-1")["id"] == lot["id"]
    assert lot_lookup.get_lot(conn, w.coop["id"], lot["id"])["gtin"] == "08930000000026"
    other = make_world(conn, keys=keys, trees=1, lon=108.3)
    with pytest.raises(NotFound):
        lot_lookup.get_lot(conn, other.coop["id"], lot["id"])
    h3 = insert_harvest(conn, other.trees[0], 2)
    lots.build_cherry_lot(conn, other.coop["id"], code="L-1", harvest_ids=[h3], keys=keys)
    with pytest.raises(Conflict, match="--coop"):
        lot_lookup.find_lot(conn, "L-1")
    assert (
        lot_lookup.find_lot(conn, "L-1", cooperative_code=other.coop["code"])["cooperative_id"]
        == other.coop["id"]
    )


def test_concurrent_builders_cannot_take_the_same_kilograms(db_url: str, keys: KeyRing) -> None:
    import threading

    from psycopg.rows import dict_row

    with psycopg.connect(db_url, row_factory=dict_row) as setup:
        w = make_world(setup, keys=keys, trees=1)
        h = insert_harvest(setup, w.trees[0], 10)
        setup.commit()
    results: list[str] = []
    barrier = threading.Barrier(2)

    def build(code: str) -> None:
        with psycopg.connect(db_url, row_factory=dict_row) as c:
            barrier.wait()
            try:
                lots.build_cherry_lot(c, w.coop["id"], code=code, harvest_kg={h: 6}, keys=keys)
                c.commit()
                results.append("ok")
            except RuleViolation as exc:
                results.append(exc.rule)

    threads = [threading.Thread(target=build, args=(code,)) for code in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["harvest_overdrawn", "ok"]
