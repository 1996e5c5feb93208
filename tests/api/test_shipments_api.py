"""/v1/shipments against the real database: the sender's operator ships kg of its lots to
a partner, the receiver's operator follows and accepts (its new lot traces back to the
cooperative's trees) or rejects it (the kg go back); the same error format, roles and
tenancy as the rest of the API (a shipment of others answers 404), every status
documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.api import routes_shipments
from coffeetrace.api.auth import create_api_key
from coffeetrace.trace import cooperatives, organisations, partners, shipment_checks, shipments
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain
from tests.api.builders import Tenant, make_tenant

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# the tenant's green lot was hulled on 10 Dec 2025 (tests/api/builders.py)
DEPARTED = "2025-12-12T08:00:00+07:00"


def _organisation(conn: psycopg.Connection, keys: KeyRing, code: str, role: str) -> dict:
    row = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys, country="VN")
    organisations.set_roles(conn, code, [role])
    auth = {
        r: {"Authorization": f"Bearer {create_api_key(conn, row['id'], r).token}"}
        for r in ("admin", "operator", "read-only")
    }
    return {"id": row["id"], "code": code, "auth": auth}


@pytest.fixture
def chain(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """The cooperative (a tenant with a green lot), an exporter that is its partner and a
    roaster that is not."""
    coop = make_tenant(conn, keys=keys)
    exporter = _organisation(conn, keys, "bmt-export", "exporter")
    roaster = _organisation(conn, keys, "berlin-roast", "roaster")
    proposal = partners.propose(conn, coop.coop_id, "bmt-export", keys=keys)
    partners.accept(conn, exporter["id"], proposal["id"], keys=keys)
    conn.commit()
    return {"coop": coop, "exporter": exporter, "roaster": roaster}


def _body(coop: Tenant, kg: float = 5.0, **kw: Any) -> dict[str, Any]:
    assert coop.green is not None
    body = {
        "receiver": "bmt-export",
        "departed_at": DEPARTED,
        "departure_place": "Ea Tu cooperative warehouse",
        "carrier": "Đắk Lắk Logistics",
        "vehicle": "47C-123.45",
        "container": "CSQU3054383",
        "seal": "SL-0042",
        "documents": [{"type": "commercial_invoice", "number": "INV-17", "sha256": SHA}],
        "sale_reference": {"type": "inv", "id": "INV-17"},
        "lines": [{"lot_id": str(coop.green["id"]), "kg": kg}],
    }
    body.update(kw)
    return body


def _receipt(received_kg: float, code: str = "EX-1", **kw: Any) -> dict[str, Any]:
    body = {
        "received_at": "2025-12-13T10:00:00+07:00",
        "place": "BMT Export dry mill",
        "measurements": {"moisture_pct": 12.4},
        "lines": [{"line": 1, "received_kg": received_kg, "code": code}],
    }
    body.update(kw)
    return body


def test_the_api_names_the_domains_vocabularies() -> None:
    assert get_args(routes_shipments.Status) == shipments.STATUSES
    assert get_args(routes_shipments.Direction) == shipments.DIRECTIONS
    assert get_args(routes_shipments.TransportKind) == shipments.TRANSPORT_KINDS
    # the document types are one Literal of the domain's, which the API's model uses
    assert (
        get_args(routes_shipments.DocumentRef.model_fields["type"].annotation)
        == shipments.DOCUMENT_TYPES
    )
    assert get_args(routes_shipments.SaleType) == shipments.SALE_TYPES


def test_ship_follow_accept_and_trace_back(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing, chain: dict[str, Any]
) -> None:
    coop, exporter = chain["coop"], chain["exporter"]
    theirs = exporter["auth"]
    assert coop.green is not None
    green_kg = float(coop.green["quantity_kg"])
    r = client.post("/v1/shipments", json=_body(coop), headers=coop.auth("read-only"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    r = client.post("/v1/shipments", json=_body(coop), headers=coop.auth("operator"))
    assert r.status_code == 201, r.text
    sent = r.json()
    sid = sent["id"]
    assert (sent["status"], sent["direction"], sent["shipped_kg"]) == ("in_transit", "out", 5.0)
    assert sent["receiver"] == {"code": "bmt-export", "public_name": "BMT-EXPORT", "country": "VN"}
    assert sent["lines"][0]["lot"]["id"] == str(coop.green["id"])
    lot = client.get(f"/v1/lots/{coop.green['id']}", headers=coop.auth()).json()
    assert lot["remaining_kg"] == pytest.approx(green_kg - 5)
    # both sides see it, each from its side
    mine = client.get("/v1/shipments", params={"direction": "out"}, headers=coop.auth("read-only"))
    assert [s["id"] for s in mine.json()["items"]] == [sid]
    incoming = client.get("/v1/shipments", params={"direction": "in"}, headers=theirs["read-only"])
    (seen,) = incoming.json()["items"]
    assert seen["direction"] == "in" and seen["lines"][0]["lot"].get("id") is None
    assert (
        client.get("/v1/shipments", params={"direction": "out"}, headers=theirs["admin"]).json()[
            "items"
        ]
        == []
    )
    # followed in transit, by either side
    r = client.post(
        f"/v1/shipments/{sid}/transport-events",
        json={
            "kind": "arrival_port",
            "occurred_at": "2025-12-13T06:00:00+07:00",
            "place": "Quy Nhơn port",
        },
        headers=theirs["operator"],
    )
    assert r.status_code == 201, r.text
    assert [(t["kind"], t["recorded_by"]) for t in r.json()["transport_events"]] == [
        ("arrival_port", "bmt-export")
    ]
    # accepted by the receiver's operator: 0.1 kg of 5 lost (2 %) is beyond 0.5 %
    r = client.post(f"/v1/shipments/{sid}/accept", json=_receipt(4.9), headers=theirs["operator"])
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]
    assert receipt["loss_flagged"] is True
    assert (receipt["loss_kg"], receipt["loss_pct"], receipt["loss_tolerance_pct"]) == (
        pytest.approx(0.1),
        pytest.approx(2.0),
        0.5,
    )
    new_lot = r.json()["lines"][0]["receiver_lot"]
    assert new_lot["code"] == "EX-1"
    # the exporter's lot is its own, and traces back to the cooperative's trees
    got = client.get(f"/v1/lots/{new_lot['id']}", headers=theirs["read-only"])
    assert got.status_code == 200 and got.json()["quantity_kg"] == pytest.approx(4.9), got.text
    assert client.get(f"/v1/lots/{new_lot['id']}", headers=coop.auth()).status_code == 404
    trace = client.get(f"/v1/lots/{new_lot['id']}/trace", headers=theirs["read-only"]).json()
    assert len(trace["trees"]) == len(coop.world.trees)
    assert sum(t["share"] for t in trace["trees"]) == pytest.approx(1.0, abs=1e-12)
    assert "receiving" in {t["step"] for t in trace["transformations"]}
    # the cooperative sees which of the exporter's lots it went into, by public id only
    ours = client.get(f"/v1/shipments/{sid}", headers=coop.auth("read-only")).json()
    assert ours["status"] == "accepted"
    assert ours["lines"][0]["receiver_lot"] == {
        "public_id": new_lot["public_id"],
        "id": None,
        "code": None,
    }
    for org in (coop.coop_id, exporter["id"]):
        assert verify_chain(conn, org, keys=keys)["ok"]
        assert shipment_checks.check_chain(conn, org) == []


def test_refusals_in_the_apis_error_format(
    client: TestClient, chain: dict[str, Any], conn: psycopg.Connection, keys: KeyRing
) -> None:
    coop, exporter, roaster = chain["coop"], chain["exporter"], chain["roaster"]
    assert coop.green is not None
    green_kg = float(coop.green["quantity_kg"])
    cases = [
        (_body(coop, receiver="berlin-roast"), 422, "not_partners"),
        (_body(coop, receiver=coop.world.coop["code"]), 422, "shipment_self"),
        (_body(coop, receiver="nobody"), 404, None),
        (_body(coop, kg=green_kg + 1), 422, "lot_overdrawn"),
        (_body(coop, departed_at="2025-11-01T08:00:00+07:00"), 422, "shipment_out_of_order"),
        (_body(coop, container="CSQU3054384"), 422, None),
        (
            _body(coop, lines=[{"lot_id": "00000000-0000-4000-8000-000000000000", "kg": 1}]),
            404,
            None,
        ),
        (_body(coop, lines=[]), 422, None),
        (
            _body(coop, documents=[{"type": "bill_of_lading", "number": "B", "sha256": "AB"}]),
            422,
            None,
        ),
        (_body(coop, carrier="   "), 422, None),
        ({**_body(coop), "status": "accepted"}, 422, None),
    ]
    for body, status, rule in cases:
        r = client.post("/v1/shipments", json=body, headers=coop.auth("operator"))
        assert r.status_code == status, (body, r.text)
        answer = r.json()
        assert set(answer) <= {"error", "message", "details"} and answer["message"]
        if rule is not None:
            assert answer["details"]["rule"] == rule, r.text
    # a lot of another organisation answers 404, naming nothing of it
    r = client.post(
        "/v1/shipments",
        json=_body(coop, receiver=coop.world.coop["code"]),
        headers=exporter["auth"]["operator"],
    )
    assert r.status_code == 404, r.text
    sid = client.post("/v1/shipments", json=_body(coop), headers=coop.auth()).json()["id"]
    # a shipment of others answers 404, whatever is tried
    outsider = roaster["auth"]["admin"]
    for method, path, body in (
        ("get", f"/v1/shipments/{sid}", None),
        ("post", f"/v1/shipments/{sid}/accept", _receipt(5)),
        ("post", f"/v1/shipments/{sid}/reject", {"reason": "not ours"}),
        (
            "post",
            f"/v1/shipments/{sid}/transport-events",
            {"kind": "other", "occurred_at": "2025-12-13T06:00:00+07:00", "place": "x"},
        ),
    ):
        r = client.request(method, path, json=body, headers=outsider)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.text)
        assert "bmt-export" not in r.text and coop.world.coop["code"] not in r.text
    assert client.get("/v1/shipments", headers=outsider).json()["items"] == []
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/v1/shipments/{unknown}", headers=coop.auth()).status_code == 404
    assert client.get("/v1/shipments/not-a-uuid", headers=coop.auth()).status_code == 422
    # the sender cannot accept or reject its own shipment; readers cannot either
    r = client.post(f"/v1/shipments/{sid}/accept", json=_receipt(5), headers=coop.auth())
    assert r.status_code == 409 and "its receiver bmt-export accepts it" in r.json()["message"]
    r = client.post(
        f"/v1/shipments/{sid}/accept", json=_receipt(5), headers=exporter["auth"]["read-only"]
    )
    assert r.status_code == 403, r.text
    r = client.post(
        f"/v1/shipments/{sid}/accept", json=_receipt(5.5), headers=exporter["auth"]["operator"]
    )
    assert r.status_code == 422 and r.json()["details"]["rule"] == "mass_balance", r.text
    r = client.post(
        f"/v1/shipments/{sid}/accept",
        json=_receipt(5, lines=[{"line": 2, "received_kg": 5, "code": "X"}]),
        headers=exporter["auth"]["operator"],
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid", r.text
    # the receiver rejects it: the kg go back, and it changes no more
    r = client.post(
        f"/v1/shipments/{sid}/reject",
        json={"reason": "moisture 14 %"},
        headers=exporter["auth"]["operator"],
    )
    assert r.status_code == 200 and r.json()["rejection"]["reason"] == "moisture 14 %", r.text
    lot = client.get(f"/v1/lots/{coop.green['id']}", headers=coop.auth()).json()
    assert lot["remaining_kg"] == pytest.approx(green_kg)
    for action, body in (("accept", _receipt(5)), ("reject", {"reason": "again"})):
        r = client.post(
            f"/v1/shipments/{sid}/{action}", json=body, headers=exporter["auth"]["operator"]
        )
        assert r.status_code == 409 and r.json()["details"]["status"] == "rejected", r.text
    r = client.post(
        f"/v1/shipments/{sid}/transport-events",
        json={"kind": "other", "occurred_at": "2025-12-13T06:00:00+07:00", "place": "x"},
        headers=coop.auth(),
    )
    assert r.status_code == 409, r.text
    in_future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = client.post("/v1/shipments", json=_body(coop, departed_at=in_future), headers=coop.auth())
    assert r.status_code == 422 and r.json()["details"]["rule"] == "shipment_in_future"
    assert client.post("/v1/shipments", json=_body(coop)).status_code == 401
    for org in (coop.coop_id, exporter["id"]):
        assert verify_chain(conn, org, keys=keys)["ok"]


def test_lists_page_and_filter(client: TestClient, chain: dict[str, Any]) -> None:
    coop, exporter = chain["coop"], chain["exporter"]
    made = sorted(
        client.post("/v1/shipments", json=_body(coop, kg=1.0), headers=coop.auth()).json()["id"]
        for _ in range(3)
    )
    client.post(
        f"/v1/shipments/{made[0]}/reject",
        json={"reason": "grade"},
        headers=exporter["auth"]["admin"],
    )
    first = client.get("/v1/shipments", params={"limit": 2}, headers=coop.auth()).json()
    assert [s["id"] for s in first["items"]] == made[:2] and first["next_cursor"] == made[1]
    rest = client.get(
        "/v1/shipments", params={"limit": 2, "cursor": first["next_cursor"]}, headers=coop.auth()
    ).json()
    assert [s["id"] for s in rest["items"]] == made[2:] and rest["next_cursor"] is None
    rejected = client.get(
        "/v1/shipments", params={"status": "rejected"}, headers=exporter["auth"]["read-only"]
    ).json()["items"]
    assert [s["id"] for s in rejected] == [made[0]]
    for params in ({"direction": "sideways"}, {"status": "lost"}, {"limit": 0}):
        r = client.get("/v1/shipments", params=params, headers=coop.auth())
        assert r.status_code == 422 and r.json()["error"] == "invalid", r.text


def test_every_status_is_documented(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    write = {"401", "403", "404", "409", "413", "422", "503"}
    expected = {
        ("get", "/v1/shipments"): {"200", "401", "422", "503"},
        ("post", "/v1/shipments"): {"201", "401", "403", "404", "413", "422", "503"},
        ("get", "/v1/shipments/{shipment_id}"): {"200", "401", "404", "422", "503"},
        ("post", "/v1/shipments/{shipment_id}/accept"): {"200", *write},
        ("post", "/v1/shipments/{shipment_id}/reject"): {"200", *write},
        ("post", "/v1/shipments/{shipment_id}/transport-events"): {"201", *write},
    }
    for (method, path), statuses in expected.items():
        assert set(paths[path][method]["responses"]) == statuses, (method, path)
