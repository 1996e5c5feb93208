"""GTINs belong to the holder of their GS1 company prefix: no cooperative can register
another's GTIN, and a refusal never tells whether another cooperative has it."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.auth import create_api_key
from coffeetrace.errors import RuleViolation
from coffeetrace.simulators.geography import gtin14
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing

PREFIX_A, PREFIX_B = "8931001", "8931002"


def _coop(conn: psycopg.Connection, code: str, prefix: str | None) -> dict[str, str]:
    coop = registry.create_cooperative(conn, code, f"Cooperative {code}", gs1_company_prefix=prefix)
    token = create_api_key(conn, coop["id"], "operator", "test").token
    conn.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_gtin_outside_the_cooperatives_prefix_is_refused(
    client: TestClient, conn: psycopg.Connection
) -> None:
    a = _coop(conn, "coop-a", PREFIX_A)
    b = _coop(conn, "coop-b", PREFIX_B)
    a_gtin = gtin14(PREFIX_A, 7)
    # B tries to squat A's GTIN first: refused by the prefix rule, not registered
    r = client.post("/v1/products", json={"name": "squat", "gtin": a_gtin}, headers=b)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "rule_violation" and body["details"]["rule"] == "gtin_prefix"
    assert PREFIX_B in body["message"] and "company prefix" in body["message"]
    # A registers its own GTIN; the GTIN-14 indicator digit (packaging level) may vary
    assert client.post("/v1/products", json={"name": "A", "gtin": a_gtin}, headers=a).status_code
    case = gtin14(PREFIX_A, 7, indicator=1)
    assert client.post("/v1/products", json={"name": "A case", "gtin": case}, headers=a).is_success
    # now B asking again learns nothing about A: the same 422, no 409
    again = client.post("/v1/products", json={"name": "squat", "gtin": a_gtin}, headers=b)
    assert again.status_code == 422 and again.json() == body
    # B's own GTINs are fine
    b_gtin = gtin14(PREFIX_B, 7)
    assert client.post("/v1/products", json={"name": "B", "gtin": b_gtin}, headers=b).is_success
    # a conflict names the caller's own product
    dup = client.post("/v1/products", json={"name": "A2", "gtin": a_gtin}, headers=a)
    assert dup.status_code == 409 and "your product 'A'" in dup.json()["message"]
    assert {p["gtin"] for p in client.get("/v1/products", headers=b).json()["items"]} == {b_gtin}


def test_a_cooperative_without_a_prefix_cannot_allocate_gtins(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    coop = registry.create_cooperative(conn, "coop-none", "No prefix")
    with pytest.raises(RuleViolation, match="no GS1 company prefix"):
        registry.create_product(conn, coop["id"], "P", keys=keys, gtin=gtin14(PREFIX_A, 1))
    assert registry.create_product(conn, coop["id"], "P", keys=keys)["gtin"] is None
    with pytest.raises(RuleViolation, match="not from your GS1 company prefix 89310"):
        registry.gtin_in_prefix(gtin14("8932", 5), "89310")
    assert registry.gtin_in_prefix(gtin14(PREFIX_A, 5)[1:], PREFIX_A) == gtin14(PREFIX_A, 5)
