"""Shipments and receipts (trace/shipments.py) against the real database: kg leave the
sender's lots under mass balance and cannot be over-shipped, even by two requests at once;
only partners ship to each other, only the receiver accepts or rejects; acceptance makes
the receiver's lots in its own chain, linked to the sender's, and the trace walks from a
receiver's lot back to the trees (shares summing to 1) and forward again across the
organisations; a rejection gives the kg back; a loss beyond the tolerance is flagged; and
an edit of a shipment row with psql is named, with its organisation, by
trace/shipment_checks.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import (
    cooperatives,
    genealogy,
    lots,
    organisations,
    partners,
    processing,
    registry,
    shipment_checks,
    shipments,
)
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.verification import verify_chain, verify_lot
from tests.factories import make_world, square
from tests.trace.builders import T0, insert_harvest

DAY = timedelta(days=1)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CONTAINER = "CSQU3054383"  # ISO 6346's own example: check digit 3


def _org(conn: psycopg.Connection, keys: KeyRing, code: str, role: str) -> Any:
    row = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys)
    organisations.set_roles(conn, code, [role])
    return row["id"]


def _partners(conn: psycopg.Connection, keys: KeyRing, a: Any, b: Any) -> None:
    proposal = partners.propose(conn, a, str(b), keys=keys)
    partners.accept(conn, b, proposal["id"], keys=keys)


@pytest.fixture
def trail(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """A cooperative with two green lots (GR-1 from three trees that gave 10, 6 and 4 kg of
    cherry; GR-2 from one tree of another farm), an exporter that is its partner, an
    importer that is the exporter's partner, and a roaster that is nobody's."""
    world = make_world(conn, keys=keys, trees=3, code="ea-tu")
    coop = world.coop["id"]
    farm2 = registry.create_farm(conn, coop, "F-OTHER", keys=keys, display_name="Other farm")
    plot2 = registry.create_plot(
        conn, coop, farm2["id"], "P-2", square(108.1, 12.7), 1.0, keys=keys
    )
    tree4 = registry.create_tree(
        conn, coop, plot2["id"], "T-OTHER", keys=keys, lon=108.1005, lat=12.7005
    )
    harvests = [
        insert_harvest(conn, tree, kg, time=T0 + timedelta(minutes=i))
        for i, (tree, kg) in enumerate(zip(world.trees, (10, 6, 4), strict=True))
    ]
    cherry1 = lots.build_cherry_lot(conn, coop, code="CH-1", harvest_ids=harvests, keys=keys)
    cherry2 = lots.build_cherry_lot(
        conn, coop, code="CH-2", harvest_ids=[insert_harvest(conn, tree4, 20, time=T0)], keys=keys
    )
    greens = [
        processing.record_transformation(
            conn,
            coop,
            step="cherry_to_green",
            occurred_at=T0 + 2 * DAY,
            inputs=[(cherry["id"], 20)],
            outputs=[{"code": code, "kg": 5, "kind": "green"}],
            keys=keys,
        )["outputs"][0]
        for cherry, code in ((cherry1, "GR-1"), (cherry2, "GR-2"))
    ]
    exporter = _org(conn, keys, "bmt-export", "exporter")
    importer = _org(conn, keys, "hh-import", "importer")
    roaster = _org(conn, keys, "berlin-roast", "roaster")
    _partners(conn, keys, coop, exporter)
    _partners(conn, keys, exporter, importer)
    conn.commit()
    return {
        "world": world,
        "coop": coop,
        "tree4": tree4,
        "gr1": greens[0],
        "gr2": greens[1],
        "exporter": exporter,
        "importer": importer,
        "roaster": roaster,
    }


def _ship(conn: psycopg.Connection, keys: KeyRing, trail: dict, kg: Any = 4, **kw: Any) -> dict:
    args: dict[str, Any] = dict(
        departed_at=T0 + 3 * DAY,
        departure_place="Ea Tu cooperative warehouse, Buôn Ma Thuột",
        lines=[(trail["gr1"]["id"], kg)],
        carrier="Đắk Lắk Logistics",
        vehicle="47C-123.45",
        container=CONTAINER,
        seal="SL-0042",
        documents=[{"type": "commercial_invoice", "number": "INV-2026-17", "sha256": SHA}],
        sale_reference={"type": "inv", "id": "INV-2026-17"},
        keys=keys,
    )
    args.update(kw)
    return shipments.create(conn, trail["coop"], "bmt-export", **args)


def _accept(
    conn: psycopg.Connection, keys: KeyRing, by: Any, shipment: dict, received: Any, **kw: Any
) -> dict:
    return shipments.accept(
        conn,
        by,
        shipment["id"],
        received_at=kw.pop("received_at", T0 + 4 * DAY),
        arrival_place="BMT Export dry mill",
        lines=kw.pop(
            "lines",
            [{"line": 1, "received_kg": received, "code": kw.pop("code", "EX-1")}],
        ),
        measurements={"moisture_pct": 12.4},
        keys=keys,
        **kw,
    )


def _events(conn: psycopg.Connection, org: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "select seq, kind, lot_ids, payload, hash from trace_events where cooperative_id = %s"
        " and (kind like 'shipment_%%' or payload ->> 'step' = 'receiving') order by seq",
        (org,),
    ).fetchall()


def _remaining(conn: psycopg.Connection, lot: dict) -> Decimal:
    return lot_by_id(conn, lot["id"])["remaining_kg"]


def test_ship_accept_and_trace_back_to_the_trees_across_organisations(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop, exporter, importer = trail["coop"], trail["exporter"], trail["importer"]
    sent = _ship(conn, keys, trail, lines=[(trail["gr1"]["id"], 4), (trail["gr2"]["id"], "2.5")])
    assert sent["status"] == "in_transit" and sent["direction"] == "out"
    assert sent["shipped_kg"] == Decimal("6.500")
    assert [(line["lot"]["code"], line["kg"]) for line in sent["lines"]] == [
        ("GR-1", Decimal("4.000")),
        ("GR-2", Decimal("2.500")),
    ]
    # the kg left the sender's lots at once
    assert _remaining(conn, trail["gr1"]) == Decimal("1.000")
    assert _remaining(conn, trail["gr2"]) == Decimal("2.500")
    # the receiver sees it coming, in; it merges both lines into one lot
    assert [s["id"] for s in shipments.list_shipments(conn, exporter, direction="in")] == [
        sent["id"]
    ]
    assert shipments.list_shipments(conn, exporter, direction="out") == []
    accepted = _accept(
        conn,
        keys,
        exporter,
        sent,
        None,
        lines=[
            {"line": 1, "received_kg": "3.99", "code": "EX-1"},
            {"line": 2, "received_kg": "2.5", "code": "EX-1", "measurements": {"defects": 3}},
        ],
    )
    assert accepted["status"] == "accepted" and accepted["direction"] == "in"
    assert accepted["receipt"]["loss_flagged"] is False  # 0.15 % lost: within 0.5 %
    ex1 = lot_by_id(conn, accepted["lines"][0]["receiver_lot"]["id"])
    assert ex1["cooperative_id"] == exporter and ex1["code"] == "EX-1"
    assert (ex1["kind"], ex1["quantity_kg"]) == ("green", Decimal("6.490"))
    assert accepted["lines"][1]["receiver_lot"]["id"] == ex1["id"]
    # the sender sees which lot the kg went into by its public id only
    seen = shipments.get(conn, coop, sent["id"])["lines"][0]["receiver_lot"]
    assert seen == {"public_id": ex1["public_id"]}

    # the exporter ships all of it on to the importer, which accepts it
    onward = shipments.create(
        conn,
        exporter,
        "hh-import",
        departed_at=T0 + 5 * DAY,
        departure_place="Cát Lái port",
        lines=[(ex1["id"], ex1["quantity_kg"])],
        keys=keys,
    )
    landed = _accept(conn, keys, importer, onward, "6.49", code="HH-1", received_at=T0 + 9 * DAY)
    hh1 = lot_by_id(conn, landed["lines"][0]["receiver_lot"]["id"])

    # backward from the importer's lot: three organisations, down to the trees
    trace = genealogy.trace_backward(conn, hh1["id"])
    shares = {t["tag_code"]: t["share"] for t in trace["trees"]}
    gr1_part, gr2_part = 4 / 6.5, 2.5 / 6.5  # EX-1 took them by the kg shipped
    expected = {
        "T-00000": gr1_part * 0.5,
        "T-00001": gr1_part * 0.3,
        "T-00002": gr1_part * 0.2,
        "T-OTHER": gr2_part,
    }
    assert shares.keys() == expected.keys()
    for tag, share in expected.items():
        assert shares[tag] == pytest.approx(share, abs=1e-12)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(p["share"] for p in trace["plots"]) == pytest.approx(1.0, abs=1e-12)
    assert {f["code"] for f in trace["farms"]} == {trail["world"].farm["code"], "F-OTHER"}
    assert sum(f["share"] for f in trace["farms"]) == pytest.approx(1.0, abs=1e-12)
    codes = {r["code"] for r in trace["lots"]}
    assert {"HH-1", "EX-1", "GR-1", "GR-2", "CH-1", "CH-2"} <= codes
    steps = [t["step"] for t in trace["transformations"]]
    assert steps.count("receiving") == 2 and steps.count("cherry_to_green") == 2

    # forward from a tree and from the sender's lot: the downstream lots, by public id
    tree = trail["world"].trees[0]
    forward = {r["public_id"]: r for r in genealogy.trace_forward(conn, tree_id=tree["id"])["lots"]}
    assert forward[hh1["public_id"]]["share"] == pytest.approx(shares["T-00000"], abs=1e-12)
    assert forward[hh1["public_id"]]["cooperative_id"] == importer
    assert forward[ex1["public_id"]]["cooperative_id"] == exporter
    from_lot = genealogy.trace_forward(conn, lot_id=trail["gr2"]["id"])["lots"]
    assert {r["public_id"] for r in from_lot} >= {ex1["public_id"], hh1["public_id"]}

    # the events: each organisation's in its own chain, the receipt linked to the sender's
    ours = _events(conn, coop)
    theirs = _events(conn, exporter)
    assert [e["kind"] for e in ours] == ["shipment_sent", "shipment_accepted"]
    assert set(ours[0]["lot_ids"]) == {trail["gr1"]["id"], trail["gr2"]["id"]}
    assert ours[1]["lot_ids"] == []  # the copy names none of the receiver's lots
    receipt = next(e for e in theirs if e["kind"] == "shipment_accepted")
    assert receipt["payload"]["sent_event"] == {
        "cooperative_id": str(coop),
        "seq": ours[0]["seq"],
        "hash": ours[0]["hash"],
    }
    assert receipt["payload"] == ours[1]["payload"]  # the same facts in both chains
    assert receipt["lot_ids"] == [ex1["id"]]
    step = next(e for e in theirs if e["kind"] == "transformation")
    assert step["payload"]["shipment"]["accepted_event"] == {
        "seq": receipt["seq"],
        "hash": receipt["hash"],
    }
    assert {i["lot_id"] for i in step["payload"]["inputs"]} == {
        str(trail["gr1"]["id"]),
        str(trail["gr2"]["id"]),
    }

    # every chain verifies, and the shipment rows match their events
    for org in (coop, exporter, importer):
        report = verify_chain(conn, org, keys=keys)
        assert report["ok"], report["problems"]
        assert shipment_checks.check_chain(conn, org) == []
    upstream = [r["lot_id"] for r in trace["lots"]]
    assert shipment_checks.check_lots(conn, upstream) == []
    for lot in (trail["gr1"], trail["gr2"]):  # the sender's lots after the acceptance
        report = verify_lot(conn, lot["id"], keys=keys)
        assert report["ok"], report["problems"]


def test_the_receivers_lot_verifies_across_the_chains(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    accepted = _accept(conn, keys, trail["exporter"], _ship(conn, keys, trail), "3.99")
    report = verify_lot(conn, accepted["lines"][0]["receiver_lot"]["id"], keys=keys)
    assert report["ok"], report["problems"]


def test_a_lot_in_transit_verifies(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    _ship(conn, keys, trail)
    report = verify_lot(conn, trail["gr1"]["id"], keys=keys)
    assert report["ok"], report["problems"]


def test_a_rejected_shipment_gives_the_kg_back(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop, exporter = trail["coop"], trail["exporter"]
    sent = _ship(conn, keys, trail, kg=3)
    assert _remaining(conn, trail["gr1"]) == Decimal("2.000")
    with pytest.raises(ValidationFailed, match="reason"):
        shipments.reject(conn, exporter, sent["id"], reason="  ", keys=keys)
    rejected = shipments.reject(
        conn, exporter, sent["id"], reason="moisture 14.2 %, above the contract's 12.5 %", keys=keys
    )
    assert rejected["status"] == "rejected" and rejected["receipt"] is None
    assert rejected["rejection"]["reason"].startswith("moisture 14.2 %")
    assert _remaining(conn, trail["gr1"]) == Decimal("5.000")
    assert [e["kind"] for e in _events(conn, coop)] == ["shipment_sent", "shipment_rejected"]
    assert [e["kind"] for e in _events(conn, exporter)] == ["shipment_rejected"]
    returned = _events(conn, exporter)[0]["payload"]["returned"]
    assert returned == [{"line": 1, "lot_id": str(trail["gr1"]["id"]), "kg": "3.000"}]
    # it changes no more, and the kg may be shipped again
    for change in (
        lambda: shipments.reject(conn, exporter, sent["id"], reason="again", keys=keys),
        lambda: _accept(conn, keys, exporter, sent, 3),
    ):
        with pytest.raises(Conflict, match="is rejected"):
            change()
    assert _ship(conn, keys, trail, kg=5)["status"] == "in_transit"
    for org in (coop, exporter):
        assert verify_chain(conn, org, keys=keys)["ok"]
        assert shipment_checks.check_chain(conn, org) == []


def test_only_partners_ship_to_each_other(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop = trail["coop"]
    for receiver, rule in (
        ("berlin-roast", "not_partners"),
        ("hh-import", "not_partners"),
        ("ea-tu", "shipment_self"),
    ):
        with pytest.raises(RuleViolation) as info:
            shipments.create(
                conn,
                coop,
                receiver,
                departed_at=T0 + 3 * DAY,
                departure_place="Ea Tu",
                lines=[(trail["gr1"]["id"], 1)],
                keys=keys,
            )
        assert info.value.rule == rule
    with pytest.raises(NotFound, match="no organisation has the code or id 'nobody'"):
        shipments.create(
            conn,
            coop,
            "nobody",
            departed_at=T0 + 3 * DAY,
            departure_place="x",
            lines=[(trail["gr1"]["id"], 1)],
            keys=keys,
        )
    assert _ship(conn, keys, trail, kg=1)["status"] == "in_transit"  # a partner: shipped
    # ...until the partnership ends
    (partnership,) = [
        p
        for p in partners.list_partnerships(conn, coop, status="active")
        if p["partner"]["code"] == "bmt-export"
    ]
    partners.end(conn, trail["exporter"], partnership["id"], keys=keys)
    with pytest.raises(RuleViolation, match="not an active trading partner") as info:
        _ship(conn, keys, trail, kg=1)
    assert info.value.rule == "not_partners"
    # and a lot ships only from its own organisation
    partners.accept(
        conn,
        trail["exporter"],
        partners.propose(conn, coop, "bmt-export", keys=keys)["id"],
        keys=keys,
    )
    with pytest.raises(NotFound, match="not a lot of your organisation"):
        shipments.create(
            conn,
            trail["exporter"],
            "ea-tu",
            departed_at=T0 + 3 * DAY,
            departure_place="BMT",
            lines=[(trail["gr2"]["id"], 1)],
            keys=keys,
        )


def test_a_lot_cannot_be_over_shipped(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    with pytest.raises(RuleViolation, match="GR-1 has 5.000 kg left, 5.001 kg were asked") as info:
        _ship(conn, keys, trail, kg="5.001")
    assert info.value.rule == "lot_overdrawn"
    assert info.value.details["remaining_kg"] == "5.000"
    _ship(conn, keys, trail, kg=4)
    with pytest.raises(RuleViolation) as info:
        _ship(conn, keys, trail, kg="1.5")
    assert info.value.rule == "lot_overdrawn"
    # a processing step sees the same kg: they are in the shipment
    with pytest.raises(RuleViolation) as info:
        processing.record_transformation(
            conn,
            trail["coop"],
            step="grading",
            occurred_at=T0 + 3 * DAY,
            inputs=[(trail["gr1"]["id"], 2)],
            outputs=[{"code": "GR-1-A", "kg": 2, "kind": "green"}],
            keys=keys,
        )
    assert info.value.rule == "lot_overdrawn"
    assert _remaining(conn, trail["gr1"]) == Decimal("1.000")


def test_two_shipments_at_once_cannot_over_ship(
    db_url: str, keys: KeyRing, trail: dict[str, Any]
) -> None:
    """Two requests on two connections each ship 3 of the lot's 5 kg: the lot's row lock
    makes the second wait for the first and see what it left."""
    barrier = threading.Barrier(2)
    results: list[str] = []

    def ship() -> None:
        with psycopg.connect(db_url, row_factory=dict_row) as c:
            barrier.wait()
            try:
                _ship(c, keys, trail, kg=3)
                c.commit()
                results.append("ok")
            except RuleViolation as exc:
                results.append(exc.rule)

    threads = [threading.Thread(target=ship) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["lot_overdrawn", "ok"]
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        assert _remaining(c, trail["gr1"]) == Decimal("2.000")
        (n,) = c.execute("select count(*) from shipments").fetchone().values()  # type: ignore[union-attr]
        assert n == 1
        assert verify_chain(c, trail["coop"], keys=keys)["ok"]


def test_only_the_receiver_accepts_or_rejects(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop, exporter, roaster = trail["coop"], trail["exporter"], trail["roaster"]
    sent = _ship(conn, keys, trail)
    # an organisation that is neither side does not find it, whatever it tries
    for attempt in (
        lambda: _accept(conn, keys, roaster, sent, 4),
        lambda: shipments.reject(conn, roaster, sent["id"], reason="no", keys=keys),
        lambda: shipments.get(conn, roaster, sent["id"]),
        lambda: shipments.record_transport(
            conn,
            roaster,
            sent["id"],
            kind="arrival_port",
            occurred_at=T0 + 4 * DAY,
            place="x",
            keys=keys,
        ),
    ):
        with pytest.raises(NotFound, match="not one of your organisation's"):
            attempt()
    assert shipments.list_shipments(conn, roaster) == []
    # the sender cannot accept or reject its own shipment
    with pytest.raises(Conflict, match="its receiver bmt-export accepts it"):
        _accept(conn, keys, coop, sent, 4)
    with pytest.raises(Conflict, match="its receiver bmt-export rejects it"):
        shipments.reject(conn, coop, sent["id"], reason="changed my mind", keys=keys)
    _accept(conn, keys, exporter, sent, 4)
    with pytest.raises(Conflict, match="is accepted"):
        _accept(conn, keys, exporter, sent, 4, code="EX-2")
    with pytest.raises(Conflict, match="is accepted"):
        shipments.reject(conn, exporter, sent["id"], reason="late", keys=keys)


def test_the_sender_cannot_change_a_lot_after_acceptance(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop = trail["coop"]
    sent = _ship(conn, keys, trail, kg=5)
    ex1 = _accept(conn, keys, trail["exporter"], sent, 5)["lines"][0]["receiver_lot"]
    # the kg are the receiver's: the sender cannot process, ship or take them back
    with pytest.raises(NotFound):
        processing.record_transformation(
            conn,
            coop,
            step="grading",
            occurred_at=T0 + 5 * DAY,
            inputs=[(ex1["id"], 1)],
            outputs=[{"code": "X-1", "kg": 1, "kind": "green"}],
            keys=keys,
        )
    with pytest.raises(NotFound, match="not a lot of your organisation"):
        shipments.create(
            conn,
            coop,
            "bmt-export",
            departed_at=T0 + 5 * DAY,
            departure_place="x",
            lines=[(ex1["id"], 1)],
            keys=keys,
        )
    with pytest.raises(RuleViolation) as info:
        _ship(conn, keys, trail, kg="0.001")
    assert info.value.rule == "lot_overdrawn"
    for change in (
        lambda: shipments.reject(conn, coop, sent["id"], reason="take back", keys=keys),
        lambda: shipments.record_transport(
            conn, coop, sent["id"], kind="other", occurred_at=T0 + 5 * DAY, place="x", keys=keys
        ),
    ):
        with pytest.raises(Conflict):
            change()
    # the receiving step pins the sender's kg: it is the sender's lot's consumption now
    (row,) = conn.execute(
        "select ti.kg, t.cooperative_id from transformation_inputs ti"
        " join transformations t on t.id = ti.transformation_id where ti.lot_id = %s"
        " and t.step = 'receiving'",
        (trail["gr1"]["id"],),
    ).fetchall()
    assert (row["kg"], row["cooperative_id"]) == (Decimal("5.000"), trail["exporter"])
    assert verify_lot(conn, trail["gr1"]["id"], keys=keys)["ok"]
    # an edit behind the application's back is named with the sender's organisation
    conn.execute("update shipment_lines set kg = 4 where shipment_id = %s", (sent["id"],))
    problems = shipment_checks.check_chain(conn, coop)
    assert {(p["problem"], p["kind"], p["organisation"]["code"]) for p in problems} == {
        ("shipment_edited", "shipment_sent", "ea-tu"),
        ("shipment_edited", "shipment_accepted", "ea-tu"),
    }
    assert all(p["record"] == {"type": "shipment", "id": str(sent["id"])} for p in problems)
    assert "lines[0].kg" in problems[0]["detail"]


def test_a_loss_beyond_the_tolerance_is_flagged_and_a_gain_refused(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    exporter = trail["exporter"]
    first = _ship(conn, keys, trail, kg=4)
    with pytest.raises(RuleViolation, match="4.010 kg received of 4.000 kg shipped") as info:
        _accept(conn, keys, exporter, first, "4.01")
    assert info.value.rule == "mass_balance"
    assert shipments.get(conn, exporter, first["id"])["status"] == "in_transit"  # untouched
    flagged = _accept(conn, keys, exporter, first, "3.9")  # 2.5 % lost
    receipt, line = flagged["receipt"], flagged["lines"][0]
    assert receipt["loss_flagged"] is True and line["loss_flagged"] is True
    assert (receipt["loss_kg"], receipt["loss_pct"], receipt["loss_tolerance_pct"]) == (
        Decimal("0.100"),
        Decimal("2.500"),
        Decimal("0.500"),
    )
    event = next(e for e in _events(conn, exporter) if e["kind"] == "shipment_accepted")
    assert event["payload"]["loss_flagged"] is True
    assert (event["payload"]["loss_pct"], event["payload"]["received_kg"]) == ("2.500", "3.900")
    step = next(e for e in _events(conn, exporter) if e["kind"] == "transformation")
    assert step["payload"]["measurements"] == {
        "moisture_pct": 12.4,
        "shipment_id": str(first["id"]),
        "loss_kg": "0.100",
        "loss_pct": "2.500",
        "loss_flagged": True,
    }
    # within the tolerance, or under a wider one, nothing is flagged
    within = _accept(conn, keys, exporter, _ship(conn, keys, trail, kg=1), "0.996", code="EX-2")
    assert within["receipt"]["loss_flagged"] is False
    assert within["receipt"]["loss_pct"] == Decimal("0.400")
    wider = _accept(
        conn,
        keys,
        exporter,
        shipments.create(
            conn,
            trail["coop"],
            "bmt-export",
            departed_at=T0 + 3 * DAY,
            departure_place="x",
            lines=[(trail["gr2"]["id"], 4)],
            keys=keys,
        ),
        "3.9",
        code="EX-3",
        loss_tolerance_pct=3,
    )
    assert wider["receipt"]["loss_flagged"] is False
    assert wider["receipt"]["loss_tolerance_pct"] == Decimal("3.000")


def test_transport_events_follow_a_shipment_in_transit(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop, exporter = trail["coop"], trail["exporter"]
    sent = _ship(conn, keys, trail)
    shipments.record_transport(
        conn,
        coop,
        sent["id"],
        kind="departure_port",
        occurred_at=T0 + 3 * DAY + timedelta(hours=5),
        place="Cát Lái port, Hồ Chí Minh City",
        note="loaded on MSC Anna",
        keys=keys,
    )
    followed = shipments.record_transport(
        conn,
        exporter,
        sent["id"],
        kind="arrival_port",
        occurred_at=T0 + 4 * DAY,
        place="Quy Nhơn port",
        keys=keys,
    )
    assert [(t["kind"], t["recorded_by"]) for t in followed["transport_events"]] == [
        ("departure_port", "ea-tu"),
        ("arrival_port", "bmt-export"),
    ]
    # each in the chain of the organisation that recorded it
    ours = [e for e in _events(conn, coop) if e["kind"] == "shipment_transport"]
    theirs = [e for e in _events(conn, exporter) if e["kind"] == "shipment_transport"]
    assert [e["payload"]["kind"] for e in ours] == ["departure_port"]
    assert [e["payload"]["kind"] for e in theirs] == ["arrival_port"]
    assert ours[0]["payload"]["note"] == "loaded on MSC Anna"
    for kind, at, refusal in (
        ("arrival_port", T0 + 2 * DAY, "shipment_out_of_order"),  # before it departed
        ("arrival_port", datetime.now(UTC) + DAY, "shipment_in_future"),
    ):
        with pytest.raises(RuleViolation) as info:
            shipments.record_transport(
                conn, coop, sent["id"], kind=kind, occurred_at=at, place="x", keys=keys
            )
        assert info.value.rule == refusal
    with pytest.raises(ValidationFailed, match="none of departure_port"):
        shipments.record_transport(
            conn,
            coop,
            sent["id"],
            kind="teleported",
            occurred_at=T0 + 4 * DAY,
            place="x",
            keys=keys,
        )
    for org in (coop, exporter):
        assert shipment_checks.check_chain(conn, org) == []
    conn.execute(
        "update shipment_transport_events set place = 'Hải Phòng port' where kind = 'arrival_port'"
    )
    (problem,) = shipment_checks.check_chain(conn, exporter)
    assert problem["problem"] == "shipment_edited" and problem["kind"] == "shipment_transport"
    assert problem["record"]["type"] == "shipment_transport_event"
    assert problem["organisation"]["code"] == "bmt-export"
    assert "Hải Phòng port" in problem["detail"]
    assert shipment_checks.check_chain(conn, coop) == []


def test_what_a_shipment_or_receipt_cannot_be(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    gr1 = trail["gr1"]["id"]
    for kw, refusal in (
        ({"container": "CSQU3054384"}, "wrong check digit \\(expected 3, got 4\\)"),
        ({"container": "CSQ3054383"}, "not an ISO 6346 number"),
        (
            {"documents": [{"type": "bill_of_lading", "number": "B1", "sha256": "x" * 64}]},
            "64 lower-case hex",
        ),
        ({"documents": [{"type": "selfie", "number": "B1", "sha256": SHA}]}, "document type"),
        ({"sale_reference": {"type": "gift", "id": "x"}}, "business transaction type"),
        ({"departure_place": " "}, "departure_place"),
    ):
        with pytest.raises(ValidationFailed, match=refusal):
            _ship(conn, keys, trail, **kw)
    for kw, rule in (
        ({"departed_at": T0 + DAY}, "shipment_out_of_order"),  # before GR-1 was made
        ({"departed_at": datetime.now(UTC) + DAY}, "shipment_in_future"),
        ({"lines": [(gr1, 1), (gr1, 2)]}, "duplicate_line"),
        ({"lines": [(gr1, 0)]}, "positive_kg"),
        ({"lines": []}, "no_lines"),
    ):
        with pytest.raises(RuleViolation) as info:
            _ship(conn, keys, trail, **kw)
        assert info.value.rule == rule
    assert _remaining(conn, trail["gr1"]) == Decimal("5.000")  # nothing was taken
    sent = _ship(conn, keys, trail, lines=[(gr1, 2), (trail["gr2"]["id"], 2)])
    exporter = trail["exporter"]
    other_product = registry.create_product(
        conn, trail["coop"], "Not the exporter's", keys=keys, kind="green"
    )
    for lines, refusal in (
        ([{"line": 1, "received_kg": 2, "code": "E1"}], "line\\(s\\) \\[2\\] are missing"),
        ([{"line": 1, "received_kg": 2, "code": "E1"}] * 2, "line 1 is given twice"),
        ([{"line": 3, "received_kg": 2, "code": "E1"}], "not a line of the shipment"),
        (
            [
                {"line": 1, "received_kg": 2, "code": "E1", "kind": "green"},
                {"line": 2, "received_kg": 2, "code": "E1", "kind": "roasted"},
            ],
            "different kinds",
        ),
    ):
        with pytest.raises(ValidationFailed, match=refusal):
            _accept(conn, keys, exporter, sent, None, lines=lines)
    with pytest.raises(NotFound, match="product"):
        _accept(
            conn,
            keys,
            exporter,
            sent,
            None,
            lines=[
                {"line": 1, "received_kg": 2, "code": "E1", "product_id": other_product["id"]},
                {"line": 2, "received_kg": 2, "code": "E2"},
            ],
        )
    with pytest.raises(RuleViolation) as info:
        _accept(
            conn,
            keys,
            exporter,
            sent,
            None,
            received_at=T0 + 2 * DAY,
            lines=[
                {"line": 1, "received_kg": 2, "code": "E1"},
                {"line": 2, "received_kg": 2, "code": "E2"},
            ],
        )
    assert info.value.rule == "shipment_out_of_order"
    # a lot code the receiver uses already
    lots.insert_lot(conn, exporter, code="E1", kind="green", quantity_kg=Decimal(1))
    with pytest.raises(Conflict, match="lot code 'E1' is already used"):
        _accept(
            conn,
            keys,
            exporter,
            sent,
            None,
            lines=[
                {"line": 1, "received_kg": 2, "code": "E1"},
                {"line": 2, "received_kg": 2, "code": "E2"},
            ],
        )
    assert shipments.get(conn, exporter, sent["id"])["status"] == "in_transit"
    with pytest.raises(ValidationFailed):
        shipments.list_shipments(conn, exporter, direction="sideways")
    with pytest.raises(ValidationFailed):
        shipments.list_shipments(conn, exporter, status="lost")


def test_lists_page_by_id_and_filter(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    coop, exporter = trail["coop"], trail["exporter"]
    made = [_ship(conn, keys, trail, kg=1)["id"] for _ in range(3)]
    shipments.reject(conn, exporter, made[1], reason="wrong grade", keys=keys)
    first = shipments.list_shipments(conn, coop, limit=2)
    rest = shipments.list_shipments(conn, coop, after=first[-1]["id"], limit=2)
    assert [s["id"] for s in first + rest] == sorted(made)
    assert [s["id"] for s in shipments.list_shipments(conn, exporter, status="rejected")] == [
        made[1]
    ]
    assert len(shipments.list_shipments(conn, exporter, direction="in", status="in_transit")) == 2
    assert shipments.list_shipments(conn, coop, direction="in") == []


def test_psql_edits_of_shipments_are_named(
    conn: psycopg.Connection, keys: KeyRing, trail: dict[str, Any]
) -> None:
    """Each edit behind the application's back is named with the organisation whose chain
    no longer matches, and the record."""
    coop, exporter = trail["coop"], trail["exporter"]
    accepted = _accept(conn, keys, exporter, _ship(conn, keys, trail), "3.99")
    pending = _ship(conn, keys, trail, kg=1)
    sid, pid = str(accepted["id"]), str(pending["id"])
    edits = [
        ("update shipments set container = 'MSKU1234565' where id = %(s)s", {"ea-tu"}, sid),
        ("update shipments set seal = 'SL-9999' where id = %(p)s", {"ea-tu"}, pid),
        ("update shipments set received_kg = 4 where id = %(s)s", {"ea-tu", "bmt-export"}, sid),
        (
            "update shipment_lines set received_kg = 4 where shipment_id = %(s)s",
            {"ea-tu", "bmt-export"},
            sid,
        ),
        (
            "update shipments set status = 'in_transit', received_at = null, received_kg = null"
            " where id = %(s)s",
            {"ea-tu", "bmt-export"},
            sid,
        ),
        ("update shipment_lines set lot_id = %(other)s where shipment_id = %(p)s", {"ea-tu"}, pid),
        ("delete from shipments where id = %(p)s", {"ea-tu"}, pid),
        (
            "insert into shipments (sender_id, receiver_id, departed_at, departure_place,"
            " shipped_kg) values (%(coop)s, %(exporter)s, now(), 'nowhere', 1)",
            {"ea-tu"},
            None,
        ),  # in transit: only the sender's chain should have recorded it
    ]
    params = {"s": sid, "p": pid, "coop": coop, "exporter": exporter, "other": trail["gr2"]["id"]}
    assert shipment_checks.check_chain(conn, coop) == []
    for sql, named, record in edits:
        with conn.transaction(force_rollback=True):
            conn.execute(sql, params)
            problems = [
                p for org in (coop, exporter) for p in shipment_checks.check_chain(conn, org)
            ]
            assert {p["organisation"]["code"] for p in problems} == named, (sql, problems)
            if record is not None:
                assert {p["record"]["id"] for p in problems} == {record}, (sql, problems)
            else:
                assert {p["problem"] for p in problems} == {"shipment_unrecorded"}
    # the lot's verification path names them too, in both chains
    with conn.transaction(force_rollback=True):
        conn.execute("update shipments set arrival_place = 'Hamburg' where id = %s", (sid,))
        lot = accepted["lines"][0]["receiver_lot"]["id"]
        problems = shipment_checks.check_lots(conn, [lot])
        assert {(p["organisation"]["code"], p["kind"]) for p in problems} == {
            ("ea-tu", "shipment_accepted"),
            ("bmt-export", "shipment_accepted"),
        }
        assert all("arrival_place" in p["detail"] for p in problems)
    # an edit of the sender's event breaks the link the receipt holds
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update trace_events set payload = jsonb_set(payload, '{seal}', '\"SL-1\"')"
            " where kind = 'shipment_sent' and payload ->> 'shipment_id' = %s",
            (sid,),
        )
        named = {
            (p["problem"], p["organisation"]["code"])
            for p in shipment_checks.check_chain(conn, exporter)
        }
        assert ("shipment_link_broken", "ea-tu") in named
        assert "hash_mismatch" in {
            p["problem"] for p in verify_chain(conn, coop, keys=keys)["problems"]
        }
    assert shipment_checks.check_chain(conn, coop) == []
    assert shipment_checks.check_chain(conn, exporter) == []
