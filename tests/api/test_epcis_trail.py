"""Captured EPCIS events joining the trail, through the HTTP API with each organisation's
own key: a cooperative's shipping ObjectEvent creates a shipment, the roaster's receiving
ObjectEvent accepts it, the roaster's roasting TransformationEvent on the cooperative's
lot (which it holds by that receipt) creates its roasted lot, which traces back to the
cooperative's trees, has its page, is queried back and delivered on a subscription;
sensor data on a lot is in its history and found by MATCH_epc; refusals name the event,
the field and the rule; the chain audit names a trail row edited by psql."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.api.auth import create_api_key
from coffeetrace.settings import Settings
from coffeetrace.trace import cooperatives, epcis_hash, organisations, partners, registry
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain
from tests.api.builders import GTIN, Tenant, make_tenant
from tests.api.epcis_helpers import assert_valid, capture, document, event_path, events_of, query
from tests.api.test_epcis_subscriptions import TOKEN, Receiver, receiver  # noqa: F401

ROAST_GTIN = "04012345000016"  # the roaster's product (GS1 check digit)
SGLN = "urn:epc:id:sgln:8930000.00001.0"


def _gln(prefix: str, ref: str) -> str:
    return prefix + ref + epcis_hash.check_digit(prefix + ref)


COOP_PREFIX, ROASTER_PREFIX = "8930000", "4012345"
COOP_GLN, ROASTER_GLN = _gln(COOP_PREFIX, "00001"), _gln(ROASTER_PREFIX, "00001")


def _lgtin(gtin: str, prefix: str, code: str) -> str:
    item = gtin[0] + gtin[1 + len(prefix) : 13]
    return f"urn:epc:class:lgtin:{prefix}.{item}.{code}"


def _wait(what: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "epcis_webhook_allow_private": True, "epcis_deliver_poll_s": 0.1,
        "epcis_webhook_retry_base_s": 0.1, "epcis_capture_poll_s": 0.2,
        "page_cache_recheck_s": 0.0})  # fmt: skip


@pytest.fixture
def parties(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """The cooperative (a green lot of its product GTIN) with a GLN, and a roaster that is
    its partner, with a GLN and a product of its own."""
    coop = make_tenant(conn, keys=keys)
    conn.execute("update cooperatives set gln = %s where id = %s", (COOP_GLN, coop.coop_id))
    row = cooperatives.create_cooperative(conn, "berlin-roast", "Berlin Roast", keys=keys,
                                          country="DE", gs1_prefixes=[ROASTER_PREFIX])  # fmt: skip
    organisations.set_roles(conn, "berlin-roast", ["roaster"])
    conn.execute("update cooperatives set gln = %s where id = %s", (ROASTER_GLN, row["id"]))
    registry.create_product(conn, row["id"], "Robusta roast", keys=keys, kind="roasted",
                            gtin=ROAST_GTIN)  # fmt: skip
    proposal = partners.propose(conn, coop.coop_id, "berlin-roast", keys=keys)
    partners.accept(conn, row["id"], proposal["id"], keys=keys)
    roaster = Tenant(world=coop.world)  # only its keys are used (not its coop_id)
    roaster.keys = {r: create_api_key(conn, row["id"], r).token
                    for r in ("admin", "operator", "read-only")}  # fmt: skip
    conn.commit()
    return {"coop": coop, "roaster": roaster, "roaster_id": row["id"]}


def _shipping(green_class: str, kg: float, **fields: Any) -> dict[str, Any]:
    event = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6a1e0000-0000-4000-8000-000000000001",
        "eventTime": "2025-12-12T08:00:00.000+07:00",
        "eventTimeZoneOffset": "+07:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "quantityList": [{"epcClass": green_class, "quantity": kg, "uom": "KGM"}],
        "bizLocation": {"id": SGLN},
        "sourceList": [{"type": "owning_party",
                        "source": f"urn:epc:id:pgln:{COOP_PREFIX}.00001"}],
        "destinationList": [{"type": "owning_party",
                             "destination": f"urn:epc:id:pgln:{ROASTER_PREFIX}.00001"}],
        "bizTransactionList": [{"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:inv-17"}],
    }  # fmt: skip
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def _receiving(green_class: str, kg: float) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2025-12-20T09:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "bizStep": "receiving",
        "disposition": "in_progress",
        "quantityList": [{"epcClass": green_class, "quantity": kg, "uom": "KGM"}],
        "bizLocation": {"id": f"https://id.gs1.org/414/{ROASTER_GLN}"},
        "sourceList": [{"type": "owning_party", "source": f"https://id.gs1.org/417/{COOP_GLN}"}],
    }


ROAST_ID = "urn:uuid:6a1e0000-0000-4000-8000-0000000000a1"


def _roasting(
    base: str,
    input_class: str,
    in_kg: float,
    out_code: str,
    out_kg: float,
    event_id: str = ROAST_ID,
) -> dict[str, Any]:
    return {
        "type": "TransformationEvent",
        "eventID": event_id,
        "eventTime": "2025-12-22T07:30:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "inputQuantityList": [{"epcClass": input_class, "quantity": in_kg, "uom": "KGM"}],
        "outputQuantityList": [{"epcClass": _lgtin(ROAST_GTIN, ROASTER_PREFIX, out_code),
                                "quantity": out_kg, "uom": "KGM"}],
        "transformationID": "urn:uuid:6a1e0000-0000-4000-8000-00000000t001",
        "bizStep": f"{base}/voc/bizstep/roasting",
        "disposition": "in_progress",
        "bizLocation": {"id": f"urn:epc:id:sgln:{ROASTER_PREFIX}.00001.0"},
    }  # fmt: skip


def _lot_by_code(client: TestClient, tenant: Tenant, code: str) -> dict[str, Any]:
    lots = client.get("/v1/lots", params={"limit": 200}, headers=tenant.auth("read-only"))
    assert lots.status_code == 200, lots.text
    (lot,) = [x for x in lots.json()["items"] if x["code"] == code]
    return lot


def test_a_partners_roasting_joins_the_trail(
    conn: psycopg.Connection,
    keys: KeyRing,
    hook_settings: Settings,
    parties: dict[str, Any],
    receiver: Receiver,  # noqa: F811
    epcis_schema_path: Any,
) -> None:
    coop, roaster = parties["coop"], parties["roaster"]
    assert coop.green is not None
    code = coop.green["code"]
    base = hook_settings.public_base_url.rstrip("/")
    on_the_bag = f"{base}/01/{GTIN}/10/{code}"  # the Digital Link its QR code carries
    with TestClient(create_app(hook_settings)) as client:
        # the cooperative's system ships 4 kg of its green lot to the roaster
        job = capture(client, coop, document(_shipping(on_the_bag, 4.0)))
        assert job["success"], job
        (sent,) = client.get("/v1/shipments", params={"direction": "out"},
                             headers=coop.auth("read-only")).json()["items"]  # fmt: skip
        assert (sent["status"], sent["shipped_kg"]) == ("in_transit", 4.0)
        assert sent["receiver"]["code"] == "berlin-roast"
        assert sent["departure_place"] == SGLN
        # the roaster's system receives it (3.98 kg weighed): the shipment is accepted
        lgtin = _lgtin(GTIN, COOP_PREFIX, code)
        job = capture(client, roaster, document(_receiving(lgtin, 3.98)))
        assert job["success"], job
        (got,) = client.get("/v1/shipments", params={"direction": "in"},
                            headers=roaster.auth("read-only")).json()["items"]  # fmt: skip
        assert got["status"] == "accepted" and got["id"] == sent["id"]
        received = _lot_by_code(client, roaster, code)
        assert received["quantity_kg"] == pytest.approx(3.98)
        # the roaster subscribes to its transformations
        made = client.post("/epcis/queries", headers=roaster.auth("operator"), json={
            "name": "roasts", "query": {"eventType": ["TransformationEvent"]}})  # fmt: skip
        assert made.status_code == 201, made.text
        hook = {"dest": receiver.url, "signatureToken": TOKEN, "stream": True}
        sub = client.post(
            "/epcis/queries/roasts/subscriptions", headers=roaster.auth("operator"), json=hook
        )
        assert sub.status_code == 201, sub.text
        # ... and roasts 3.9 kg of the cooperative's lot (named as printed on the bag)
        roast = _roasting(base, f"https://id.gs1.org/01/{GTIN}/10/{code}", 3.9, "R-25-1", 3.3)
        doc = document(roast)
        assert_valid(doc, epcis_schema_path)
        job = capture(client, roaster, doc)
        assert job["success"] and job["errors"] == [], job
        roasted = _lot_by_code(client, roaster, "R-25-1")
        assert (roasted["kind"], roasted["quantity_kg"]) == ("roasted", pytest.approx(3.3))
        assert roasted["gtin"] == ROAST_GTIN  # its product: the roaster's of that GTIN
        assert client.get(f"/v1/lots/{received['id']}", headers=roaster.auth()).json()[
            "remaining_kg"
        ] == pytest.approx(0.08)
        # its trace: back to the cooperative's lot and trees; forward from the receipt
        trace = client.get(f"/v1/lots/{roasted['id']}/trace", headers=roaster.auth()).json()
        codes = {x.get("code") for x in trace["lots"]}
        assert {"R-25-1", code} <= codes
        assert "roasting" in [t["step"] for t in trace["transformations"]]
        assert trace["trees"] and sum(t["share"] for t in trace["trees"]) == pytest.approx(1)
        forward = client.get("/v1/trace/forward", params={"lot_id": received["id"]},
                             headers=roaster.auth()).json()  # fmt: skip
        assert "R-25-1" in {x["code"] for x in forward["lots"]}
        # its public page tells the roasting of the cooperative's lot
        page = client.get(f"/l/{roasted['public_id']}", params={"lang": "en"})
        assert page.status_code == 200
        assert "Roasting" in page.text and "R-25-1" in page.text and code in page.text
        # queried back by the class it wrote, as captured, valid against GS1's schema
        answer = query(client, roaster, MATCH_outputEPCClass=roast["outputQuantityList"][0][
            "epcClass"])  # fmt: skip
        assert [e["eventID"] for e in events_of(answer)] == [roast["eventID"]]
        assert_valid(answer.json(), epcis_schema_path)
        # delivered on the subscription: the captured event, not a second copy from the
        # roaster's own published trail
        _wait(lambda: roast["eventID"] in {e["eventID"] for e in receiver.events()})
        _wait(lambda: _published(conn, parties["roaster_id"]))
        steps = events_of(query(client, roaster, EQ_bizStep=roast["bizStep"]))
        assert [e["eventID"] for e in steps] == [roast["eventID"]]
        receipts = events_of(query(client, roaster, EQ_bizStep="receiving"))
        assert [e["type"] for e in receipts] == ["ObjectEvent"]  # the captured one alone
        upstream = events_of(query(client, roaster, eventType="TransformationEvent"))
        assert {e["ct:step"] for e in upstream if "ct:step" in e} == {"drying", "hulling"}
        # captured again (same eventID): nothing more is made
        assert capture(client, roaster, doc)["success"]
        lots = client.get("/v1/lots", params={"limit": 200}, headers=roaster.auth()).json()
        assert [x["code"] for x in lots["items"]].count("R-25-1") == 1
    for org in (coop.coop_id, parties["roaster_id"]):
        checked = verify_chain(conn, org, keys=keys)
        assert checked["ok"], checked["problems"]
    # a trail row edited behind the application's back is named
    conn.execute("update epcis_trail set lot_ids = '{}' where event_id = %s", (roast["eventID"],))
    problems = verify_chain(conn, parties["roaster_id"], keys=keys)["problems"]
    assert [p["problem"] for p in problems] == ["epcis_trail_edited"]
    assert problems[0]["record"] == {"type": "epcis_trail", "id": roast["eventID"]}
    conn.execute("delete from epcis_trail where event_id = %s", (roast["eventID"],))
    problems = verify_chain(conn, parties["roaster_id"], keys=keys)["problems"]
    assert [p["problem"] for p in problems] == ["epcis_trail_missing"]
    conn.rollback()


def _published(conn: psycopg.Connection, organisation: Any) -> bool:
    row = conn.execute(
        "select m.chain_seq = (select max(seq) from trace_events e"
        " where e.cooperative_id = m.cooperative_id) as done"
        " from epcis_own_marks m where m.cooperative_id = %s",
        (organisation,),
    ).fetchone()
    conn.rollback()
    return bool(row and row["done"])


def test_refusals_name_the_event_field_and_rule(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing, parties: dict[str, Any],
    tenant_b: Tenant,
) -> None:  # fmt: skip
    coop = parties["coop"]
    conn.commit()
    assert coop.green is not None and tenant_b.green is not None
    base = "https://trace.example"
    mine = f"https://id.gs1.org/01/{GTIN}/10/{coop.green['code']}"
    theirs = f"https://id.gs1.org/01/08930000000026/10/{tenant_b.green['code']}"
    # a lot of another organisation, neither its own nor received: refused, nothing stored
    stolen = _roasting(base, theirs, 1.0, "R-X", 0.8)
    job = capture(client, coop, document(stolen))
    assert not job["success"]
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException"
    assert error["ct:reason"] == "lot_not_held" and error["field"] == "inputQuantityList[0]"
    assert stolen["eventID"] in error["detail"]
    assert client.get(event_path(stolen["eventID"]), headers=coop.auth()).status_code == 404
    # more out than roasting's yield allows (proceed: the other event is kept)
    greedy = _roasting(base, mine, 2.0, "R-Y", 1.9,
                       event_id="urn:uuid:6a1e0000-0000-4000-8000-0000000000a2")  # fmt: skip
    fine = _roasting(base, mine, 2.0, "R-Z", 1.6,
                     event_id="urn:uuid:6a1e0000-0000-4000-8000-0000000000a3")  # fmt: skip
    job = capture(client, coop, document(greedy, fine), behaviour="proceed")
    assert not job["success"]
    (error,) = job["errors"]
    assert (error["ct:reason"], error["field"]) == ("mass_balance", "outputQuantityList")
    assert error["instance"] == greedy["eventID"]
    assert client.get(event_path(greedy["eventID"]), headers=coop.auth()).status_code == 404
    assert client.get(event_path(fine["eventID"]), headers=coop.auth()).status_code == 200
    assert _lot_by_code(client, coop, "R-Z")["kind"] == "roasted"
    # a bizStep that names no step, an output that names no lot
    odd = _roasting(
        base, mine, 0.5, "R-W", 0.4, event_id="urn:uuid:6a1e0000-0000-4000-8000-0000000000a4"
    )
    odd["bizStep"] = "https://partner.example/steps/magic"
    job = capture(client, coop, document(odd))
    assert (job["errors"][0]["ct:reason"], job["errors"][0]["field"]) == ("unknown_step", "bizStep")
    # a shipping of its lots that names no receiver
    job = capture(client, coop, document(_shipping(mine, 1.0, destinationList=None)))
    assert (job["errors"][0]["ct:reason"], job["errors"][0]["field"]) == (
        "receiver_missing", "destinationList")  # fmt: skip
    # events naming no lot on the platform are stored as before
    job = capture(client, coop, document(_shipping("urn:epc:class:lgtin:4000001.012345.X1", 1.0)))
    assert job["success"], job
    assert verify_chain(conn, coop.coop_id, keys=keys)["ok"]


def test_sensor_data_on_a_lot_is_in_its_history(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing, parties: dict[str, Any]
) -> None:
    coop = parties["coop"]
    assert coop.green is not None
    code = coop.green["code"]
    log = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6a1e0000-0000-4000-8000-0000000000b1",
        "eventTime": "2025-12-12T20:00:00.000+07:00",
        "eventTimeZoneOffset": "+07:00",
        "action": "OBSERVE",
        "bizStep": "sensor_reporting",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/10/{code}"],
        "readPoint": {"id": "urn:epc:id:sgln:8930000.00001.7"},
        "sensorElementList": [{
            "sensorMetadata": {"startTime": "2025-12-12T08:00:00Z",
                               "endTime": "2025-12-12T13:00:00Z"},
            "sensorReport": [{"type": "Temperature", "uom": "CEL", "minValue": 24.1,
                              "maxValue": 31.5, "meanValue": 27.2}],
        }],
    }  # fmt: skip
    assert capture(client, coop, document(log))["success"]
    lot_id = coop.green["id"]
    for name, value in (("MATCH_epc", _lgtin(GTIN, COOP_PREFIX, code)),
                        ("MATCH_anyEPC", f"https://id.gs1.org/01/{GTIN}/10/{code}")):  # fmt: skip
        assert [e["eventID"] for e in events_of(query(client, coop, **{name: value}))] == [
            log["eventID"]
        ]
    path = "/epcis/epcs/" + quote(f"https://id.gs1.org/01/{GTIN}/10/{code}", safe="") + "/events"
    assert log["eventID"] in [e["eventID"] for e in events_of(query(client, coop, path))]
    # in the lot's history: its signed statement lists the capture, and it still verifies
    doc = client.get(f"/v1/lots/{lot_id}/provenance", headers=coop.auth()).json()
    assert "epcis_capture" in [e["kind"] for e in doc["document"]["chain"]["events"]]
    verified = client.get(f"/v1/lots/{lot_id}/verify", headers=coop.auth()).json()
    assert verified["ok"], verified["problems"]
    exported = client.get(f"/v1/lots/{lot_id}/epcis", headers=coop.auth()).json()
    (seen,) = [e for e in exported["epcisBody"]["eventList"] if e["eventID"] == log["eventID"]]
    assert seen["sensorElementList"][0]["sensorReport"][0]["maxValue"] == 31.5
    checked = verify_chain(conn, coop.coop_id, keys=keys)
    assert checked["ok"], checked["problems"]
    # a trail row no capture recorded (inserted with psql) is named
    conn.execute(
        "insert into epcis_trail (cooperative_id, event_id, kind, lot_ids, chain_seq)"
        " values (%s, 'urn:uuid:forged', 'observation', array[%s::uuid], 1)",
        (coop.coop_id, lot_id),
    )
    problems = verify_chain(conn, coop.coop_id, keys=keys)["problems"]
    assert [p["problem"] for p in problems] == ["epcis_trail_unrecorded"]
    conn.rollback()


def test_a_whole_lot_named_by_its_page_and_a_receiver_off_the_platform(
    client: TestClient, conn: psycopg.Connection, parties: dict[str, Any], settings: Settings
) -> None:
    coop = parties["coop"]
    assert coop.green is not None
    base = settings.public_base_url.rstrip("/")
    page = f"{base}/l/{coop.green['public_id']}"
    # shipped to a buyer that is not on the platform: stored, no shipment
    away = _shipping(page, 1.0, destinationList=[
        {"type": "owning_party", "destination": "urn:epc:id:pgln:4099999.00001"}])  # fmt: skip
    assert capture(client, coop, document(away))["success"]
    shipped = client.get("/v1/shipments", headers=coop.auth("read-only")).json()["items"]
    assert shipped == []
    # an EPC in inputEPCList takes all that is left of the lot
    left = client.get(f"/v1/lots/{coop.green['id']}", headers=coop.auth()).json()["remaining_kg"]
    step = _roasting(base, page, 1.0, "R-ALL", round(left * 0.8, 3))
    del step["inputQuantityList"]
    step["inputEPCList"] = [page]
    job = capture(client, coop, document(step))
    assert job["success"], job
    assert client.get(f"/v1/lots/{coop.green['id']}", headers=coop.auth()).json()[
        "remaining_kg"
    ] == pytest.approx(0)
    made = _lot_by_code(client, coop, "R-ALL")
    assert made["quantity_kg"] == pytest.approx(round(left * 0.8, 3))
    # the cooperative's product is a green one: the roasted lot has the GTIN's product
    # only when the product is the organisation's own (ROAST_GTIN is the roaster's)
    assert made["product_id"] is None and made["gtin"] is None
