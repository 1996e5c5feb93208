"""A four-organisation trail built with the real functions: a cooperative's green lot
GR-1 (three trees that gave 10, 6 and 4 kg of cherry) shipped to an exporter, then to an
importer, then to a roaster, which blends it with an external Brazilian lot, roasts the
blend and packs it under its own GTIN."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace import (
    cooperatives,
    external_lots,
    lots,
    organisations,
    partners,
    processing,
    registry,
    shipments,
)
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from tests.factories import make_world
from tests.trace.builders import T0, insert_harvest

DAY = timedelta(days=1)
ROASTER_PREFIX = "4012345"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def org(conn: psycopg.Connection, keys: KeyRing, code: str, role: str, **kw: Any) -> Any:
    row = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys, **kw)
    organisations.set_roles(conn, code, [role])
    return row["id"]


def partner(conn: psycopg.Connection, keys: KeyRing, a: Any, b: Any, scopes: Any = None) -> None:
    extra = {"scopes": scopes} if scopes is not None else {}
    proposal = partners.propose(conn, a, str(b), keys=keys, **extra)
    partners.accept(conn, b, proposal["id"], keys=keys)


def hop(
    conn: psycopg.Connection, keys: KeyRing, sender: Any, receiver: Any, lot: dict, code: str,
    day: int,
) -> tuple[dict, dict]:  # fmt: skip
    """Ship all of `lot` and accept it whole as `code`: (the shipment, the new lot)."""
    sent = shipments.create(
        conn,
        sender,
        str(receiver),
        departed_at=T0 + day * DAY,
        departure_place=f"warehouse of {code}",
        lines=[(lot["id"], lot["quantity_kg"])],
        keys=keys,
    )
    done = shipments.accept(
        conn,
        receiver,
        sent["id"],
        received_at=T0 + (day + 1) * DAY,
        arrival_place=f"store of {code}",
        lines=[{"line": 1, "received_kg": lot["quantity_kg"], "code": code}],
        keys=keys,
    )
    return done, lot_by_id(conn, done["lines"][0]["receiver_lot"]["id"])


def four_organisations(
    conn: psycopg.Connection, keys: KeyRing, *, coop_scopes: Any = None
) -> dict[str, Any]:
    """The trail; `coop_scopes`: what the cooperative grants the exporter (default: the
    default scopes)."""
    world = make_world(conn, keys=keys, trees=3, code="ea-tu")
    coop = world.coop["id"]
    harvests = [
        insert_harvest(conn, tree, kg, time=T0 + timedelta(minutes=i))
        for i, (tree, kg) in enumerate(zip(world.trees, (10, 6, 4), strict=True))
    ]
    cherry = lots.build_cherry_lot(conn, coop, code="CH-1", harvest_ids=harvests, keys=keys)
    gr1 = processing.record_transformation(
        conn,
        coop,
        step="cherry_to_green",
        occurred_at=T0 + 2 * DAY,
        inputs=[(cherry["id"], 20)],
        outputs=[{"code": "GR-1", "kg": 5, "kind": "green"}],
        keys=keys,
    )["outputs"][0]
    exporter = org(conn, keys, "bmt-export", "exporter")
    importer = org(conn, keys, "hh-import", "importer", country="DE")
    roaster = org(
        conn, keys, "berlin-roast", "roaster", country="DE", gs1_prefixes=[ROASTER_PREFIX]
    )
    partner(conn, keys, coop, exporter, coop_scopes)
    partner(conn, keys, exporter, importer)
    partner(conn, keys, importer, roaster)
    s1, ex1 = hop(conn, keys, coop, exporter, gr1, "EX-1", 3)
    s2, hh1 = hop(conn, keys, exporter, importer, ex1, "HH-1", 5)
    s3, ro1 = hop(conn, keys, importer, roaster, hh1, "RO-1", 7)
    brazil = external_lots.declare(
        conn,
        roaster,
        code="EXT-BR-1",
        kg=5,
        origin_country="BR",
        producer="Fazenda Santa Inês, Minas Gerais",
        supplier="Hamburg Green Coffee Trading",
        documents=[{"type": "certificate_of_origin", "number": "CO-BR-77", "sha256": SHA}],
        received_at=T0 + 8 * DAY,
        keys=keys,
    )
    blend = processing.record_transformation(
        conn,
        roaster,
        step="blending",
        occurred_at=T0 + 9 * DAY,
        inputs=[(ro1["id"], 5), (brazil["id"], 5)],
        outputs=[{"code": "BL-1", "kg": 10, "kind": "blend"}],
        keys=keys,
    )["outputs"][0]
    roasted = processing.record_transformation(
        conn,
        roaster,
        step="roasting",
        occurred_at=T0 + 10 * DAY,
        inputs=[(blend["id"], 10)],
        outputs=[{"code": "RR-1", "kg": "8.4", "kind": "roasted"}],
        measurements={"roast_level": "medium"},
        keys=keys,
    )["outputs"][0]
    product = registry.create_product(
        conn,
        roaster,
        "Berlin Đắk Lắk blend 250 g",
        keys=keys,
        kind="packed",
        gtin=gtin14(ROASTER_PREFIX, 1),
    )
    packed = processing.record_transformation(
        conn,
        roaster,
        step="packing",
        occurred_at=T0 + 11 * DAY,
        inputs=[(roasted["id"], "8.4")],
        outputs=[{"code": "PK-1", "kg": "8.4", "kind": "packed", "product_id": product["id"]}],
        keys=keys,
    )["outputs"][0]
    conn.commit()
    return {
        "world": world,
        "coop": coop,
        "exporter": exporter,
        "importer": importer,
        "roaster": roaster,
        "gr1": gr1,
        "ex1": ex1,
        "hh1": hh1,
        "ro1": ro1,
        "brazil": brazil,
        "blend": blend,
        "roasted": roasted,
        "packed": packed,
        "product": product,
        "shipments": [s1, s2, s3],
    }
