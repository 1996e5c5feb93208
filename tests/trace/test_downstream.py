"""Processing downstream of the cooperative's gate (issue 14, items 4 and 5) against the
real database: a roaster processes the lot it received with the same steps and rules
(yield limits, mass balance), blends it with an external lot declared with an origin
claim, packs it under its own GTIN; the backward trace of the retail lot crosses four
organisations with shares summing to 1 (the external lot as its own share); what each
organisation is shown of the others follows the partnerships' scopes; verification of the
retail lot names the organisation and record of an edit in any of the four chains."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace import external_lots, genealogy, processing, trail
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.verification import verify_chain, verify_lot
from tests.trace.builders import T0
from tests.trace.downstream_builders import DAY, ROASTER_PREFIX, four_organisations


@pytest.fixture
def built(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    return four_organisations(conn, keys)


def test_the_retail_lot_traces_back_through_four_organisations(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    packed = lot_by_id(conn, built["packed"]["id"])
    # the roaster's own product, GTIN and lot code: its own Digital Link
    assert packed["cooperative_id"] == built["roaster"]
    assert packed["gtin"] == gtin14(ROASTER_PREFIX, 1) and packed["code"] == "PK-1"
    back = genealogy.trace_backward(conn, packed["id"])
    shares = {t["tag_code"]: t["share"] for t in back["trees"]}
    assert shares == pytest.approx({"T-00000": 0.25, "T-00001": 0.15, "T-00002": 0.1})
    (brazil,) = back["external"]
    assert (brazil["origin_country"], brazil["public_id"]) == ("BR", built["brazil"]["public_id"])
    assert brazil["share"] == pytest.approx(0.5) and brazil["kg"] == pytest.approx(4.2)
    assert sum(shares.values()) + brazil["share"] == pytest.approx(1.0, abs=1e-12)
    assert sum(p["share"] for p in back["plots"]) + brazil["share"] == pytest.approx(1.0)
    owners = {r["cooperative_id"] for r in back["lots"]}
    assert owners == {built[k] for k in ("coop", "exporter", "importer", "roaster")}
    steps = [t["step"] for t in back["transformations"]]
    assert steps.count("receiving") == 3
    assert {"cherry_to_green", "blending", "roasting", "packing"} <= set(steps)
    report = verify_lot(conn, packed["id"], keys=keys)
    assert report["ok"], report["problems"]
    for org in ("coop", "exporter", "importer", "roaster"):
        assert verify_chain(conn, built[org], keys=keys)["ok"]


def test_the_receivers_steps_keep_their_rules(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    roaster, coop = built["roaster"], built["coop"]
    brazil = external_lots.declare(
        conn,
        roaster,
        code="EXT-ET-1",
        kg=10,
        origin_country="ET",
        producer="Sidama union",
        received_at=T0 + 8 * DAY,
        keys=keys,
    )
    # roasting's yield limit holds for an external lot too
    with pytest.raises(RuleViolation) as info:
        processing.record_transformation(
            conn,
            roaster,
            step="roasting",
            occurred_at=T0 + 9 * DAY,
            inputs=[(brazil["id"], 10)],
            outputs=[{"code": "RR-X", "kg": "9.5", "kind": "roasted"}],
            keys=keys,
        )
    assert info.value.rule == "mass_balance"
    # a step cannot take more than is left, nor happen before the lot was received
    for kg, when, rule in (
        ("10.001", T0 + 9 * DAY, "lot_overdrawn"),
        (1, T0 + 7 * DAY, "step_before_inputs"),
    ):
        with pytest.raises(RuleViolation) as info:
            processing.record_transformation(
                conn,
                roaster,
                step="grading",
                occurred_at=when,
                inputs=[(brazil["id"], kg)],
                outputs=[{"code": "GX-1", "kg": 1, "kind": "green"}],
                keys=keys,
            )
        assert info.value.rule == rule
    # another organisation cannot take it
    with pytest.raises(NotFound):
        processing.record_transformation(
            conn,
            coop,
            step="grading",
            occurred_at=T0 + 9 * DAY,
            inputs=[(brazil["id"], 1)],
            outputs=[{"code": "GX-2", "kg": 1, "kind": "green"}],
            keys=keys,
        )
    assert external_lots.get(conn, roaster, brazil["id"])["remaining_kg"] == Decimal("10.000")
    with pytest.raises(NotFound):
        external_lots.get(conn, coop, brazil["id"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"origin_country": "XX"}, "ISO 3166-1"),
        ({"origin_country": "vn"}, "ISO 3166-1"),
        ({"producer": "  "}, "producer"),
        ({"producer": "a\x00b"}, "NUL"),
        ({"producer": "\ud800"}, "not valid text"),
        ({"supplier": "x" * 201}, "supplier"),
        ({"kg": "abc"}, "number of kilograms"),
        ({"kg": "1e15"}, "at most"),
        ({"kind": "tea"}, "lot kind"),
        ({"documents": [{"type": "contract", "number": "C-1", "sha256": "nope"}]}, "SHA-256"),
    ],
)
def test_a_bad_declaration_is_refused_with_its_reason(
    conn: psycopg.Connection, keys: KeyRing, change: dict[str, Any], message: str
) -> None:
    from tests.trace.downstream_builders import org

    roaster = org(conn, keys, "berlin-roast", "roaster", country="DE")
    args: dict[str, Any] = dict(
        code="EXT-1", kg=5, origin_country="BR", producer="Fazenda", received_at=T0
    )
    args.update(change)
    with pytest.raises(ValidationFailed, match=message):
        external_lots.declare(conn, roaster, keys=keys, **args)
    assert external_lots.list_external(conn, roaster) == []


def test_declarations_in_the_future_twice_or_empty_are_refused(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    roaster = built["roaster"]
    base: dict[str, Any] = dict(origin_country="BR", producer="Fazenda", keys=keys)
    with pytest.raises(RuleViolation) as info:
        external_lots.declare(conn, roaster, code="E-2", kg=0, received_at=T0, **base)
    assert info.value.rule == "positive_kg"
    with pytest.raises(RuleViolation) as info:
        external_lots.declare(conn, roaster, code="E-2", kg=1, received_at=T0 + 400 * DAY, **base)
    assert info.value.rule == "step_in_future"
    with pytest.raises(Conflict):
        external_lots.declare(conn, roaster, code="EXT-BR-1", kg=1, received_at=T0, **base)
    # a product of another organisation is not found
    with pytest.raises(NotFound):
        external_lots.declare(
            conn,
            built["coop"],
            code="E-3",
            kg=1,
            received_at=T0,
            product_id=built["product"]["id"],
            **base,
        )
    assert [e["code"] for e in external_lots.list_external(conn, roaster)] == ["EXT-BR-1"]
    assert external_lots.list_external(conn, roaster, country="ET") == []


# one row of each organisation's records, edited as psql would
EDITS = {
    "coop": ("update lot_harvests set kg = kg + 1 where lot_id = %s", "cherry"),
    "exporter": ("update lots set quantity_kg = quantity_kg + 1 where id = %s", "ex1"),
    "importer": (
        "update transformations set place = 'elsewhere' where id ="
        " (select produced_by from lots where id = %s)",
        "hh1",
    ),
    "roaster": ("update external_lots set producer = 'Someone else' where lot_id = %s", "brazil"),
}


@pytest.mark.parametrize("owner", sorted(EDITS))
def test_an_edit_in_any_organisation_fails_the_retail_lot_naming_it(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any], owner: str
) -> None:
    sql, lot = EDITS[owner]
    if lot == "cherry":
        (row,) = conn.execute(
            "select id from lots where code = 'CH-1' and cooperative_id = %s", (built["coop"],)
        ).fetchall()
        target = row["id"]
    else:
        target = built[lot]["id"]
    conn.execute(sql, (target,))
    report = verify_lot(conn, built["packed"]["id"], keys=keys)
    assert not report["ok"]
    named = {(p.get("organisation") or {}).get("code") for p in report["problems"]}
    code = {"coop": "ea-tu", "exporter": "bmt-export", "importer": "hh-import",
            "roaster": "berlin-roast"}[owner]  # fmt: skip
    assert code in named, report["problems"]
    ours = [p for p in report["problems"] if (p.get("organisation") or {}).get("code") == code]
    assert all(p["organisation"]["id"] == str(built[owner]) for p in ours)
    # the other organisations' records are not blamed (their statements may still move:
    # the retail lot's statement is the roaster's, rebuilt from every row)
    others = named - {code, "berlin-roast"}
    assert not others, report["problems"]
    if owner == "roaster":
        assert any(p.get("record", {}).get("type") == "external_lot" for p in ours)
        assert not verify_chain(conn, built["roaster"], keys=keys)["ok"]


def test_what_a_partner_sees_upstream_follows_the_scopes(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    tree_ids = {str(t["id"]) for t in built["world"].trees}
    farm_id = str(built["world"].farm["id"])
    view = trail.backward_for(conn, built["roaster"], built["packed"]["id"])
    text = repr(view)
    # no internal id of another organisation's trees, farm or plots; no private data
    assert not any(i in text for i in tree_ids) and farm_id not in text
    assert "Nguyễn Văn A" not in text and "079123456789" not in text
    trees = view["trees"]
    assert {t["public_id"] for t in trees} == {t["public_id"] for t in built["world"].trees}
    assert all(set(t) == {"public_id", "share", "kg", "organisation"} for t in trees)
    (plot,) = view["plots"]
    assert plot["geometry"]["type"] == "Polygon" and plot["organisation"]["code"] == "ea-tu"
    # the roaster's own rows stay whole, the others' lots are shown by public id only
    own = [r for r in view["lots"] if "lot_id" in r]
    assert {r["code"] for r in own} == {"RO-1", "EXT-BR-1", "BL-1", "RR-1", "PK-1"}
    assert all("code" not in r for r in view["lots"] if "lot_id" not in r)
    total = sum(t["share"] for t in trees) + sum(e["share"] for e in view["external"])
    assert total == pytest.approx(1.0)
    assert {o["code"] for o in view["organisations"]} == {
        "ea-tu", "bmt-export", "hh-import", "berlin-roast"
    }  # fmt: skip


def test_a_partnership_granting_only_geolocation_withholds_the_rest(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    built = four_organisations(conn, keys, coop_scopes=["eudr_geolocation"])
    # the grant travels with the lots: the exporter and the roaster downstream see alike
    for viewer, lot in (("exporter", "ex1"), ("roaster", "packed")):
        view = trail.backward_for(conn, built[viewer], built[lot]["id"])
        assert view["trees"] == [] and view["farms"] == []
        (plot,) = view["plots"]
        assert set(plot) == {"geometry", "area_ha", "share", "kg", "organisation"}
        (trees,) = view["withheld"]["trees"]
        assert trees["organisation"]["code"] == "ea-tu"
        external = sum(e["share"] for e in view["external"])
        assert trees["share"] + external == pytest.approx(1.0)
        steps = [t for t in view["transformations"] if t["organisation"]["code"] == "ea-tu"]
        assert [t["step"] for t in steps] == ["cherry_to_green"] and "place" not in steps[0]
        coop = next(o for o in view["organisations"] if o["code"] == "ea-tu")
        assert coop["scopes"] == ["eudr_geolocation"]
    # the cooperative sees its own rows whole
    own = trail.backward_for(conn, built["coop"], built["gr1"]["id"])
    assert len(own["trees"]) == 3 and "tree_id" in own["trees"][0] and own["withheld"] == {}


def test_forward_from_a_tree_reaches_the_other_organisations_by_public_id(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["coop"]
    tree = built["world"].trees[0]
    seen = trail.forward_for(conn, coop, genealogy.trace_forward(conn, tree_id=tree["id"]))
    foreign = {r["public_id"]: r for r in seen["lots"] if "lot_id" not in r}
    assert set(foreign) == {
        built[k]["public_id"] for k in ("ex1", "hh1", "ro1", "blend", "roasted", "packed")
    }
    first_shipment = str(built["shipments"][0]["id"])
    for r in foreign.values():
        assert set(r) == {"public_id", "kind", "organisation", "kg", "share", "depth",
                          "terminal", "shipments"}  # fmt: skip
        assert r["shipments"] == [first_shipment]
    pk = foreign[built["packed"]["public_id"]]
    assert pk["organisation"] == {"code": "berlin-roast", "name": "BERLIN-ROAST"}
    assert pk["kg"] == pytest.approx(8.4 * 0.25) and pk["terminal"] is True
    own = [r for r in seen["lots"] if "lot_id" in r]
    assert {r["code"] for r in own} == {"CH-1", "GR-1"}
