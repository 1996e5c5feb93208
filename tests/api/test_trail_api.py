"""One trail across four organisations through the API, each with its own key: external
lots declared and read (errors in the API's format, another's answering 404); the
backward trace of the roaster's retail lot shows upstream rows only as the partnerships
grant them; the forward trace of the cooperative reaches the others' lots by public id;
verification of the retail lot names the organisation whose row was edited."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.auth import create_api_key
from coffeetrace.trace.keys import KeyRing
from tests.trace.downstream_builders import SHA, four_organisations

ORGS = ("coop", "exporter", "importer", "roaster")


@pytest.fixture
def built(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    made = four_organisations(conn, keys)
    made["auth"] = {
        org: {
            role: {"Authorization": f"Bearer {create_api_key(conn, made[org], role).token}"}
            for role in ("operator", "read-only")
        }
        for org in ORGS
    }
    conn.commit()
    return made


def _declaration(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "EXT-CO-1",
        "kg": 12.5,
        "origin_country": "CO",
        "producer": "Finca La Esperanza, Huila",
        "supplier": "Bremen Coffee Import",
        "documents": [{"type": "certificate_of_origin", "number": "CO-9", "sha256": SHA}],
        "received_at": "2026-11-18T09:00:00+01:00",
    }
    body.update(kw)
    return body


def test_external_lots_are_declared_read_and_kept_to_their_organisation(
    client: TestClient, built: dict[str, Any]
) -> None:
    roaster, coop = built["auth"]["roaster"], built["auth"]["coop"]
    r = client.post("/v1/external-lots", json=_declaration(), headers=roaster["read-only"])
    assert r.status_code == 403
    r = client.post("/v1/external-lots", json=_declaration(), headers=roaster["operator"])
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["origin_country"], made["quantity_kg"], made["kind"]) == ("CO", 12.5, "green")
    assert made["documents"][0]["sha256"] == SHA
    # a lot of the organisation like any other
    lot = client.get(f"/v1/lots/{made['id']}", headers=roaster["read-only"])
    assert lot.status_code == 200 and lot.json()["code"] == "EXT-CO-1"
    listed = client.get("/v1/external-lots", params={"country": "CO"}, headers=roaster["read-only"])
    assert [e["id"] for e in listed.json()["items"]] == [made["id"]]
    # another organisation does not find it
    assert (
        client.get(f"/v1/external-lots/{made['id']}", headers=coop["read-only"]).status_code == 404
    )
    assert client.get("/v1/external-lots", headers=coop["read-only"]).json()["items"] == []
    # the same code twice: 409; bad input: 422 with a reason
    again = client.post("/v1/external-lots", json=_declaration(), headers=roaster["operator"])
    assert again.status_code == 409
    for change in (
        {"origin_country": "XX"},
        {"origin_country": "br"},
        {"producer": "a\u0000b"},
        {"producer": "\ud800"},
        {"kg": -1},
        {"kg": 1e12},
        {"kg": "5"},
        {"received_at": "2026-11-18T09:00:00"},
        {"received_at": "2099-01-01T00:00:00Z"},
        {"documents": [{"type": "contract", "number": "x", "sha256": "0" * 63}]},
        {"color": "green"},
    ):
        bad = client.post(  # as JSON text: a lone surrogate travels as its escape
            "/v1/external-lots",
            content=json.dumps(_declaration(code="EXT-X", **change)),
            headers={**roaster["operator"], "Content-Type": "application/json"},
        )
        assert bad.status_code == 422, (change, bad.text)
        assert bad.json()["message"], bad.json()
    foreign_product = _declaration(code="EXT-Y", product_id=str(built["product"]["id"]))
    assert (
        client.post("/v1/external-lots", json=foreign_product, headers=coop["operator"]).status_code
        == 404
    )


def test_the_roaster_sees_upstream_as_granted(client: TestClient, built: dict[str, Any]) -> None:
    roaster = built["auth"]["roaster"]["read-only"]
    r = client.get(f"/v1/lots/{built['packed']['id']}/trace", headers=roaster)
    assert r.status_code == 200, r.text
    body = r.json()
    text = r.text
    for tree in built["world"].trees:
        assert str(tree["id"]) not in text and tree["public_id"] in text
    assert str(built["world"].farm["id"]) not in text and "Nguyễn Văn A" not in text
    assert body["plots"][0]["geometry"]["type"] == "Polygon"
    assert body["external"][0]["origin_country"] == "BR"
    shares = sum(t["share"] for t in body["trees"]) + sum(e["share"] for e in body["external"])
    assert shares == pytest.approx(1.0)
    assert {o["code"] for o in body["organisations"]} == {
        "ea-tu", "bmt-export", "hh-import", "berlin-roast"
    }  # fmt: skip
    # the cooperative's lot is not the roaster's to trace
    gr1 = client.get(f"/v1/lots/{built['gr1']['id']}/trace", headers=roaster)
    assert gr1.status_code == 404


def test_the_cooperative_follows_its_coffee_into_the_others_lots(
    client: TestClient, built: dict[str, Any]
) -> None:
    coop = built["auth"]["coop"]["read-only"]
    tree = built["world"].trees[0]
    r = client.get("/v1/trace/forward", params={"tree_id": str(tree["id"])}, headers=coop)
    assert r.status_code == 200, r.text
    lots = {x["public_id"]: x for x in r.json()["lots"]}
    packed = lots[built["packed"]["public_id"]]
    assert packed["organisation"] == {"code": "berlin-roast", "name": "BERLIN-ROAST"}
    assert packed["kg"] == pytest.approx(8.4 * 0.25)
    assert packed["shipments"] == [str(built["shipments"][0]["id"])]
    assert "lot_id" not in packed and "code" not in packed
    assert lots[built["ex1"]["public_id"]]["organisation"]["code"] == "bmt-export"
    # the roaster cannot start a recall from the cooperative's tree
    other = client.get(
        "/v1/trace/forward",
        params={"tree_id": str(tree["id"])},
        headers=built["auth"]["roaster"]["read-only"],
    )
    assert other.status_code == 404


def test_verifying_the_retail_lot_names_the_organisation_that_fails(
    client: TestClient, conn: psycopg.Connection, built: dict[str, Any]
) -> None:
    roaster = built["auth"]["roaster"]["read-only"]
    url = f"/v1/lots/{built['packed']['id']}/verify"
    assert client.get(url, headers=roaster).json()["ok"] is True
    conn.execute(
        "update lots set quantity_kg = quantity_kg + 1 where id = %s", (built["hh1"]["id"],)
    )
    conn.commit()
    report = client.get(url, headers=roaster).json()
    assert report["ok"] is False
    named = {(p.get("organisation") or {}).get("code") for p in report["problems"]}
    assert "hh-import" in named, report["problems"]


def test_the_roasters_retail_lot_has_its_own_digital_link_and_labels(
    client: TestClient, built: dict[str, Any]
) -> None:
    roaster = built["auth"]["roaster"]["read-only"]
    packed = built["packed"]["id"]
    r = client.get(f"/v1/lots/{packed}/qr.svg", headers=roaster)
    assert r.status_code == 200
    gtin = built["product"]["gtin"]
    assert r.headers["X-Encoded-URI"].endswith(f"/01/{gtin}/10/PK-1")
    assert gtin.startswith("04012345")  # the roaster's own GS1 company prefix
    labels = client.post("/v1/labels", json={"lot_ids": [str(packed)]}, headers=roaster)
    assert labels.status_code == 200 and labels.content.startswith(b"%PDF")
    # the cooperative cannot print the roaster's labels
    coop = built["auth"]["coop"]["read-only"]
    assert client.get(f"/v1/lots/{packed}/qr.svg", headers=coop).status_code == 404
