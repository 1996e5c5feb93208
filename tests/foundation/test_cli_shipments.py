"""`coffeetrace shipment create|list|accept|reject` against the real database, with the
rules of trace/shipments.py."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import psycopg

from coffeetrace.trace import cooperatives, lots, organisations, partners, processing
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import lot_by_id
from coffeetrace.trace.verification import verify_chain
from tests.factories import make_world
from tests.foundation.cli_run import run as _run
from tests.trace.builders import T0, harvest_trees


def test_a_shipment_from_the_command_line(
    env: dict[str, str], conn: psycopg.Connection, keys: KeyRing, tmp_path: Path
) -> None:
    coop = make_world(conn, keys=keys, code="ea-tu").coop["id"]
    world_trees = conn.execute("select id from trees where cooperative_id = %s", (coop,)).fetchall()
    cherry = lots.build_cherry_lot(
        conn, coop, code="CH-1", harvest_ids=harvest_trees(conn, world_trees, 8), keys=keys
    )
    green = processing.record_transformation(
        conn,
        coop,
        step="cherry_to_green",
        occurred_at=T0 + timedelta(days=2),
        inputs=[(cherry["id"], 24)],
        outputs=[{"code": "GR-1", "kg": 6, "kind": "green"}],
        keys=keys,
    )["outputs"][0]
    exporter = cooperatives.create_cooperative(conn, "bmt-export", "BMT", keys=keys)["id"]
    organisations.set_roles(conn, "bmt-export", ["exporter"])
    partners.accept(
        conn, exporter, partners.propose(conn, coop, "bmt-export", keys=keys)["id"], keys=keys
    )
    conn.commit()
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 invoice 17")
    departed = (T0 + timedelta(days=3)).isoformat()
    out = _run(
        env,
        "shipment",
        "create",
        "--org",
        "ea-tu",
        "--to",
        "bmt-export",
        "--lot",
        "GR-1:4",
        "--from",
        "Ea Tu warehouse",
        "--departed-at",
        departed,
        "--container",
        "CSQU3054383",
        "--document",
        f"commercial_invoice:INV-17:{invoice}",
        "--sale",
        "inv:INV-17",
    )
    shipment = out.strip().splitlines()[-1]
    assert "in transit" in out
    assert lot_by_id(conn, green["id"])["remaining_kg"] == 2
    documents = conn.execute("select documents from shipments").fetchone()["documents"]
    assert documents[0]["sha256"] == hashlib.sha256(invoice.read_bytes()).hexdigest()
    (line,) = _run(env, "shipment", "list", "--org", "bmt-export", "--direction", "in").splitlines()
    assert line.split("\t")[:5] == [shipment, "in_transit", "in", "ea-tu", "4.000"]
    assert "its receiver bmt-export accepts it" in _run(
        env,
        "shipment",
        "accept",
        shipment,
        "--org",
        "ea-tu",
        "--line",
        "1:4:EX-1",
        "--place",
        "BMT",
        code=2,
    )
    assert "GR-1 has 2.000 kg left" in _run(
        env,
        "shipment",
        "create",
        "--org",
        "ea-tu",
        "--to",
        "bmt-export",
        "--lot",
        "GR-1:3",
        "--from",
        "x",
        code=2,
    )
    received = (T0 + timedelta(days=4)).isoformat()
    out = _run(
        env,
        "shipment",
        "accept",
        shipment,
        "--org",
        "bmt-export",
        "--line",
        "1:3.9:EX-1",
        "--place",
        "BMT Export dry mill",
        "--received-at",
        received,
        "--measure",
        "moisture_pct=12.2",
    )
    assert "2.500 % lost (beyond the tolerance of 0.500 %)" in out
    assert out.strip().splitlines()[-1].startswith("1\tEX-1\t")
    # a second shipment, rejected: its kg come back
    second = (
        _run(
            env,
            "shipment",
            "create",
            "--org",
            "ea-tu",
            "--to",
            "bmt-export",
            "--lot",
            "GR-1:2",
            "--from",
            "x",
            "--departed-at",
            departed,
        )
        .strip()
        .splitlines()[-1]
    )
    out = _run(env, "shipment", "reject", second, "--org", "bmt-export", "--reason", "wet")
    assert "back in ea-tu's lots" in out
    assert lot_by_id(conn, green["id"])["remaining_kg"] == 2
    assert "not a shipment id" in _run(
        env, "shipment", "reject", "x", "--org", "bmt-export", "--reason", "x", code=2
    )
    statuses = sorted(
        row.split("\t")[1] for row in _run(env, "shipment", "list", "--org", "ea-tu").splitlines()
    )
    assert statuses == ["accepted", "rejected"]
    for org in (coop, exporter):
        assert verify_chain(conn, org, keys=keys)["ok"]
