"""Plausibility flags reach the cooperative through the API, and only its own."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.trace import lots
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant
from tests.trace.builders import insert_harvest


def test_a_harvest_before_planting_is_flagged(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    tenant_b: Tenant,
    keys: KeyRing,
) -> None:
    tree = tenant_a.world.trees[0]  # planted 2012-06-01
    early = insert_harvest(conn, tree, 3.0, time=datetime(2011, 11, 20, 8, 0, tzinfo=UTC))
    lot = lots.build_cherry_lot(
        conn, tenant_a.coop_id, code="C-EARLY", harvest_ids=[early], keys=keys
    )
    conn.commit()

    r = client.get(f"/v1/lots/{lot['id']}/flags", headers=tenant_a.auth("read-only"))
    assert r.status_code == 200, r.text
    kinds = {(f["kind"], f["tag_code"]) for f in r.json()}
    assert ("harvest_before_planting", tree["tag_code"]) in kinds

    listed = client.get("/v1/flags", headers=tenant_a.auth("read-only"))
    assert listed.status_code == 200
    assert "harvest_before_planting" in {f["kind"] for f in listed.json()}

    # another cooperative sees neither the lot's flags nor them in its own list
    assert (
        client.get(f"/v1/lots/{lot['id']}/flags", headers=tenant_b.auth("admin")).status_code == 404
    )
    other = client.get("/v1/flags", headers=tenant_b.auth("admin")).json()
    assert all(f.get("tree_id") != tree["id"] and f.get("tag_code") != "C-EARLY" for f in other)
    assert "harvest_before_planting" not in {f["kind"] for f in other}
