"""EPCIS queries over the REST bindings: each query parameter, identifiers and CBV terms
matched whatever form they were written in, orders, eventCountLimit, paging with
nextPageToken and Link, the top-level resources, refusals, tenant isolation, and every
answer an EPCISQueryDocument valid against GS1's schema. Last, the plan: the filters the
query does not use fold away, so its indexes serve it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis, epcis_capture, epcis_query
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import GTIN, Tenant, make_tenant
from tests.api.epcis_helpers import (
    assert_valid,
    capture,
    document,
    event_path,
    events_of,
    object_event,
    query,
)

SQL = load_queries("coffeetrace.trace", "epcis_store.sql")
A1_URN, A1_DL = (
    "urn:epc:id:sgtin:8930000.000001.1001",
    "https://id.gs1.org/01/08930000000019/21/1001",
)
RP1_URN, RP1_DL = "urn:epc:id:sgln:8930000.00001.0", "https://id.gs1.org/414/8930000000019"
C1 = "urn:epc:class:lgtin:8930000.000001.LOT1"
C1_DL = "https://id.gs1.org/01/08930000000019/10/LOT1"
P1 = "urn:epc:id:sscc:8930000.0000000001"
ROASTING = "https://trace.example.vn/voc/roasting"
TRANSFORMATION = "urn:epc:id:gdti:8930000.00001.77"

E1 = object_event(
    eventID="urn:uuid:00000000-0000-4000-8000-000000000001",
    eventTime="2024-05-01T08:00:00.000+07:00",
    epcList=[A1_URN],
    readPoint={"id": RP1_URN},
    bizLocation={"id": "urn:epc:id:sgln:8930000.00002.0"},
)
E2 = object_event(
    eventID="urn:uuid:00000000-0000-4000-8000-000000000002",
    eventTime="2024-05-02T08:00:00.000+07:00",
    epcList=None,
    action="ADD",
    quantityList=[{"epcClass": C1_DL, "quantity": 600, "uom": "KGM"}],
    bizStep="commissioning",
    disposition="active",
    readPoint={"id": "https://id.gs1.org/414/8930000000026"},
)
E3 = {
    "type": "AggregationEvent",
    "eventID": "urn:uuid:00000000-0000-4000-8000-000000000003",
    "eventTime": "2024-05-03T08:00:00.000+07:00",
    "eventTimeZoneOffset": "+07:00",
    "parentID": P1,
    "childEPCs": [A1_DL],
    "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:8930000.000001.LOT2", "quantity": 5}],
    "action": "ADD",
    "bizStep": "https://ref.gs1.org/cbv/BizStep-packing",
}
E4 = {
    "type": "TransformationEvent",
    "eventID": "urn:uuid:00000000-0000-4000-8000-000000000004",
    "eventTime": "2024-05-04T08:00:00.000+07:00",
    "eventTimeZoneOffset": "+07:00",
    "inputEPCList": ["urn:epc:id:sgtin:8930000.000001.2002"],
    "outputEPCList": ["urn:epc:id:sgtin:8930000.000001.3003"],
    "inputQuantityList": [{"epcClass": C1, "quantity": 60, "uom": "KGM"}],
    "outputQuantityList": [
        {"epcClass": "urn:epc:class:lgtin:8930000.000002.R1", "quantity": 50.5, "uom": "KGM"}
    ],
    "transformationID": TRANSFORMATION,
    "bizStep": ROASTING,
}
E5 = {
    "type": "TransactionEvent",
    "eventID": "urn:uuid:00000000-0000-4000-8000-000000000005",
    "eventTime": "2024-05-05T08:00:00.000+07:00",
    "eventTimeZoneOffset": "+07:00",
    "bizTransactionList": [
        {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:8930000000016:PO1"}
    ],
    "epcList": ["urn:epc:id:sgtin:8930000.000001.4004"],
    "action": "DELETE",
    "bizStep": "receiving",
    "disposition": "in_progress",
    "bizLocation": {"id": "urn:epc:id:sgln:8930000.00003.0"},
}
EVENTS = [E1, E2, E3, E4, E5]
ID = {e["eventID"]: n for n, e in enumerate(EVENTS, 1)}  # fmt: skip


@pytest.fixture
def coop_a(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys, with_lots=False)


@pytest.fixture
def coop_b(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys, with_lots=False, gtin="08930000000026")


@pytest.fixture
def stored(client: TestClient, coop_a: Tenant, coop_b: Tenant) -> dict[str, str]:
    """E1 to E4 in one capture, E5 in a later one; B has an event naming A1 too. The
    recordTime of E5's capture, for the record-time filters."""
    assert capture(client, coop_a, document(*EVENTS[:4]))["success"]
    time.sleep(0.01)
    assert capture(client, coop_a, document(E5))["success"]
    theirs = object_event(eventID="urn:uuid:00000000-0000-4000-8000-0000000000bb", epcList=[A1_URN])
    assert capture(client, coop_b, document(theirs))["success"]
    (e5,) = events_of(query(client, coop_a, EQ_eventID=E5["eventID"]))
    return {"e5_record_time": e5["recordTime"]}


def _numbers(client: TestClient, tenant: Tenant, schema: Path, path: str = "/epcis/events",
             **params: Any) -> list[int]:  # fmt: skip
    answer = query(client, tenant, path, **params)
    assert_valid(answer.json(), schema)
    assert answer.headers["gs1-epcis-version"] == "2.0.0"
    assert answer.headers["gs1-cbv-version"] == "2.0.0"
    return [ID[e["eventID"]] for e in events_of(answer)]


CASES: dict[str, tuple[dict[str, str], list[int]]] = {
    "no parameter: all, in record order": ({}, [1, 2, 3, 4, 5]),
    "eventType": ({"eventType": "ObjectEvent"}, [1, 2]),
    "eventType list": ({"eventType": "AggregationEvent|TransformationEvent"}, [3, 4]),
    "GE_eventTime": ({"GE_eventTime": "2024-05-03T08:00:00+07:00"}, [3, 4, 5]),
    "LT_eventTime": ({"LT_eventTime": "2024-05-03T01:00:00Z"}, [1, 2]),
    "eventTime window": ({"GE_eventTime": "2024-05-02T00:00:00Z",
                          "LT_eventTime": "2024-05-04T00:00:00Z"}, [2, 3]),
    "EQ_action": ({"EQ_action": "ADD"}, [2, 3]),
    "EQ_action list": ({"EQ_action": "ADD|DELETE"}, [2, 3, 5]),
    "EQ_bizStep bare": ({"EQ_bizStep": "shipping"}, [1]),
    "EQ_bizStep as URN (captured as a word)": (
        {"EQ_bizStep": "urn:epcglobal:cbv:bizstep:receiving"}, [5]),
    "EQ_bizStep as word (captured as web URI)": ({"EQ_bizStep": "packing"}, [3]),
    "EQ_bizStep web URI": ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-commissioning"}, [2]),
    "EQ_bizStep custom": ({"EQ_bizStep": ROASTING}, [4]),
    "EQ_disposition": ({"EQ_disposition": "in_progress"}, [5]),
    "EQ_disposition list": ({"EQ_disposition": "active|in_transit"}, [1, 2]),
    "EQ_readPoint as Digital Link (captured as URN)": ({"EQ_readPoint": RP1_DL}, [1]),
    "EQ_readPoint as URN (captured as Digital Link)": (
        {"EQ_readPoint": "urn:epc:id:sgln:8930000.00002.0"}, [2]),
    "EQ_bizLocation": ({"EQ_bizLocation": "urn:epc:id:sgln:8930000.00003.0"}, [5]),
    "MATCH_epc across forms": ({"MATCH_epc": A1_URN}, [1, 3]),
    "MATCH_epc not inputs": ({"MATCH_epc": "urn:epc:id:sgtin:8930000.000001.2002"}, []),
    "MATCH_anyEPC parent": ({"MATCH_anyEPC": P1}, [3]),
    "MATCH_anyEPC input": ({"MATCH_anyEPC": "urn:epc:id:sgtin:8930000.000001.2002"}, [4]),
    "MATCH_parentID": ({"MATCH_parentID": "https://id.gs1.org/00/089300000000000019"}, [3]),
    "MATCH_inputEPC": ({"MATCH_inputEPC": "urn:epc:id:sgtin:8930000.000001.2002"}, [4]),
    "MATCH_outputEPC": ({"MATCH_outputEPC": "urn:epc:id:sgtin:8930000.000001.3003"}, [4]),
    "MATCH_epcClass": ({"MATCH_epcClass": C1}, [2]),
    "MATCH_epcClass child": ({"MATCH_epcClass": "urn:epc:class:lgtin:8930000.000001.LOT2"}, [3]),
    "MATCH_anyEPCClass": ({"MATCH_anyEPCClass": C1}, [2, 4]),
    "MATCH_inputEPCClass": ({"MATCH_inputEPCClass": C1_DL}, [4]),
    "MATCH_outputEPCClass": (
        {"MATCH_outputEPCClass": "urn:epc:class:lgtin:8930000.000002.R1"}, [4]),
    "EQ_eventID": ({"EQ_eventID": f"{E1['eventID']}|{E5['eventID']}"}, [1, 5]),
    "EQ_transformationID in the other form": (
        {"EQ_transformationID": "https://id.gs1.org/253/893000000001977"}, [4]),
    "two filters": ({"eventType": "ObjectEvent", "EQ_action": "ADD"}, [2]),
    "orderBy eventTime (DESC by default)": ({"orderBy": "eventTime"}, [5, 4, 3, 2, 1]),
    "orderBy eventTime ASC": ({"orderBy": "eventTime", "orderDirection": "ASC"}, [1, 2, 3, 4, 5]),
    "orderBy recordTime DESC": ({"orderBy": "recordTime"}, [5, 4, 3, 2, 1]),
    "eventCountLimit": ({"orderBy": "eventTime", "eventCountLimit": "2"}, [5, 4]),
    # GS1 asks for a QueryParameterException; the first in record order is kinder
    "eventCountLimit without orderBy": ({"eventCountLimit": "2"}, [1, 2]),
    "perPage beyond the events": ({"perPage": "100"}, [1, 2, 3, 4, 5]),
}  # fmt: skip


@pytest.mark.parametrize(("params", "expected"), CASES.values(), ids=CASES)
def test_query_parameter(
    params: dict[str, str],
    expected: list[int],
    client: TestClient,
    coop_a: Tenant,
    stored: dict[str, str],
    epcis_schema_path: Path,
) -> None:
    assert _numbers(client, coop_a, epcis_schema_path, **params) == expected


def test_record_time_filters(
    client: TestClient, coop_a: Tenant, stored: dict[str, str], epcis_schema_path: Path
) -> None:
    at = stored["e5_record_time"]
    assert _numbers(client, coop_a, epcis_schema_path, GE_recordTime=at) == [5]
    assert _numbers(client, coop_a, epcis_schema_path, LT_recordTime=at) == [1, 2, 3, 4]
    assert _numbers(client, coop_a, epcis_schema_path, LT_recordTime="2000-01-01T00:00:00Z") == []


def _follow(client: TestClient, tenant: Tenant, schema: Path, **params: Any) -> list[list[int]]:
    pages = []
    answer = query(client, tenant, **params)
    while True:
        assert_valid(answer.json(), schema)
        pages.append([ID[e["eventID"]] for e in events_of(answer)])
        link = answer.headers.get("link")
        if link is None:
            return pages
        assert link.startswith("<") and link.endswith('>; rel="next"')
        answer = client.get(link[1 : link.index(">")], headers=tenant.auth("read-only"))
        assert answer.status_code == 200, answer.text


def test_paging_with_next_page_token_and_link(
    client: TestClient, coop_a: Tenant, stored: dict[str, str], epcis_schema_path: Path
) -> None:
    schema = epcis_schema_path
    assert _follow(client, coop_a, schema, perPage=2) == [[1, 2], [3, 4], [5]]
    assert _follow(client, coop_a, schema, perPage=2, orderBy="eventTime") == [[5, 4], [3, 2], [1]]
    assert _follow(client, coop_a, schema, perPage=3, EQ_action="ADD|OBSERVE") == [[1, 2, 3]]
    limited = _follow(
        client, coop_a, schema, perPage=2, orderBy="eventTime", orderDirection="ASC",
        eventCountLimit=3,
    )  # fmt: skip
    assert limited == [[1, 2], [3]]
    # a page stays where it was when events are captured meanwhile
    first = query(client, coop_a, perPage=2, orderBy="eventTime", orderDirection="ASC")
    early = object_event(eventID="urn:uuid:00000000-0000-4000-8000-0000000000e0",
                         eventTime="2024-01-01T00:00:00Z")  # fmt: skip
    ID[early["eventID"]] = 0
    assert capture(client, coop_a, document(early))["success"]
    link = first.headers["link"]
    second = client.get(link[1 : link.index(">")], headers=coop_a.auth("read-only"))
    assert [ID[e["eventID"]] for e in events_of(second)] == [3, 4]


REFUSED = {
    "unknown parameter": ({"EQ_colour": "brown"}, "EQ_colour"),
    "not implemented": ({"EQ_quantity": "5"}, "EQ_quantity"),
    "bad action": ({"EQ_action": "MOVE"}, "EQ_action"),
    "bad time": ({"GE_eventTime": "yesterday"}, "GE_eventTime"),
    "empty list value": ({"eventType": "ObjectEvent|"}, "eventType"),
    "unknown orderBy": ({"orderBy": "quantity"}, "orderBy"),
    "bad orderDirection": ({"orderBy": "eventTime", "orderDirection": "UP"}, "orderDirection"),
    "eventCountLimit zero": ({"eventCountLimit": "0"}, "eventCountLimit"),
    "event type neither standard nor a URI": ({"eventType": "Event"}, "eventType"),
    "EPC not a URI": ({"MATCH_epc": "8930000000019"}, "MATCH_epc"),
    "bizStep neither a CBV word nor a URI": ({"EQ_bizStep": "roasting"}, "EQ_bizStep"),
    "perPage not a number": ({"perPage": "many"}, "perPage"),
    "foreign token": ({"nextPageToken": "bm90IGEgdG9rZW4"}, "nextPageToken"),
}


@pytest.mark.parametrize(("params", "named"), REFUSED.values(), ids=REFUSED)
def test_refused_parameters_name_the_parameter(
    params: dict[str, str], named: str, client: TestClient, coop_a: Tenant
) -> None:
    answer = client.get("/epcis/events", params=params, headers=coop_a.auth("read-only"))
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["type"] == "epcisException:QueryParameterException"
    assert body["detail"].startswith(f"{named}: ")


def test_a_token_is_a_position(
    client: TestClient, coop_a: Tenant, stored: dict[str, str], epcis_schema_path: Path
) -> None:
    link = query(client, coop_a, perPage=1).headers["link"]
    token = link.split("nextPageToken=")[1].split(">")[0]
    # given with another query, it names the same place in that query's order
    after_e1 = _numbers(
        client, coop_a, epcis_schema_path, eventType="ObjectEvent", nextPageToken=token
    )
    assert after_e1 == [2]
    twice = client.get("/epcis/events?EQ_action=ADD&EQ_action=DELETE", headers=coop_a.auth())
    assert twice.status_code == 400 and "twice" in twice.json()["detail"]


def test_top_level_resources(
    client: TestClient, coop_a: Tenant, stored: dict[str, str], epcis_schema_path: Path
) -> None:
    schema = epcis_schema_path
    types = query(client, coop_a, "/epcis/eventTypes").json()
    assert types["type"] == "Collection" and "TransformationEvent" in types["member"]
    assert _numbers(client, coop_a, schema, "/epcis/eventTypes/TransformationEvent/events") == [4]
    assert _numbers(client, coop_a, schema, f"/epcis/epcs/{A1_URN}/events") == [1, 3]
    dl = "/epcis/epcs/" + quote(A1_DL, safe="") + "/events"
    assert _numbers(client, coop_a, schema, dl) == [1, 3]
    assert _numbers(client, coop_a, schema, dl, eventType="AggregationEvent") == [3]
    assert _numbers(client, coop_a, schema, "/epcis/bizSteps/shipping/events") == [1]
    rp = "/epcis/readPoints/" + quote(RP1_DL, safe="") + "/events"
    assert _numbers(client, coop_a, schema, rp) == [1]
    loc = "/epcis/bizLocations/urn:epc:id:sgln:8930000.00003.0/events"
    assert _numbers(client, coop_a, schema, loc) == [5]
    assert _numbers(client, coop_a, schema, "/epcis/dispositions/in_progress/events") == [5]
    # the parameter the path sets cannot be given again
    again = client.get(
        f"/epcis/epcs/{A1_URN}/events", params={"MATCH_anyEPC": P1}, headers=coop_a.auth()
    )
    assert again.status_code == 400 and again.json()["detail"].startswith("MATCH_anyEPC: ")


def test_one_event_by_id(
    client: TestClient, coop_a: Tenant, stored: dict[str, str], epcis_schema_path: Path
) -> None:
    answer = query(client, coop_a, event_path(E4["eventID"]))
    assert_valid(answer.json(), epcis_schema_path)
    (got,) = events_of(answer)
    assert {k: got[k] for k in E4} == E4
    assert answer.json()["epcisBody"]["queryResults"]["queryName"] == "SimpleEventQuery"


def test_a_tenant_queries_only_its_own_events(
    client: TestClient,
    coop_a: Tenant,
    coop_b: Tenant,
    stored: dict[str, str],
    epcis_schema_path: Path,
) -> None:
    (theirs,) = events_of(query(client, coop_b, MATCH_epc=A1_URN))
    assert theirs["eventID"].endswith("bb")
    assert _numbers(client, coop_a, epcis_schema_path, MATCH_epc=A1_URN) == [1, 3]
    assert events_of(query(client, coop_b, EQ_eventID=E1["eventID"])) == []
    assert client.get(event_path(E1["eventID"]), headers=coop_b.auth()).status_code == 404
    anonymous = client.get("/epcis/events")
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "epcisException:SecurityException"


# --- the plan ----------------------------------------------------------------------------
def _plan(conn: psycopg.Connection, coop_id: Any, **params: str) -> str:
    q, _ = epcis_query.parse(list(params.items()), max_per_page=100)
    args = {
        **q.filters, "cooperative_id": coop_id, "by_record_time": q.by_record_time,
        "descending": q.descending, "after_time": None, "after_id": None, "limit": 31,
    }  # fmt: skip
    rows = conn.execute(
        "explain (format json) " + SQL["epcis_events_page"], args, prepare=False
    ).fetchall()
    plan = json.dumps(rows)
    assert "IS NULL" not in plan and "CASE" not in plan, f"a filter did not fold: {plan}"
    return plan


def test_the_unused_filters_fold_away_so_the_indexes_serve(
    conn: psycopg.Connection, coop_a: Tenant, stored: dict[str, str]
) -> None:
    # 5000 more events, each with an EPC and a class of its own (rolled back at the end)
    conn.execute(
        "insert into epcis_events (cooperative_id, event_id, event_type, event_time, hash,"
        " event, epcs, any_epcs, epc_classes, any_classes)"
        " select %(coop)s, 'urn:uuid:filler-' || n, 'ObjectEvent',"
        " now() - n * interval '1 minute', 'h', '{}', array['urn:x:' || n],"
        " array['urn:x:' || n], array['urn:c:' || n], array['urn:c:' || n]"
        " from generate_series(1, 5000) n",
        {"coop": coop_a.coop_id},
    )
    conn.execute("analyze epcis_events")
    by_time = _plan(conn, coop_a.coop_id, orderBy="eventTime")
    assert "epcis_events_time_idx" in by_time and '"Sort"' not in by_time
    by_record = _plan(conn, coop_a.coop_id, orderBy="recordTime", orderDirection="ASC")
    assert "epcis_events_record_idx" in by_record and '"Sort"' not in by_record
    assert "Backward" in _plan(conn, coop_a.coop_id, orderBy="recordTime")
    assert "epcis_events_any_epcs_idx" in _plan(conn, coop_a.coop_id, MATCH_anyEPC=A1_URN)
    assert "epcis_events_any_epcs_idx" in _plan(conn, coop_a.coop_id, MATCH_epc=A1_URN)
    assert "epcis_events_any_classes_idx" in _plan(conn, coop_a.coop_id, MATCH_epcClass=C1)
    conn.rollback()


# --- the platform's own events -------------------------------------------------------------
def _wait_for(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        found = events_of(query(client, tenant, perPage=100, **params))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_platforms_own_events_are_queried_like_captured_ones(
    client: TestClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    conn: psycopg.Connection,
    epcis_schema_path: Path,
) -> None:
    assert tenant_a.green is not None and tenant_a.cherry is not None
    # the first query enrols the cooperative: the worker then publishes its trail (and
    # again whenever its chain grows)
    steps = _wait_for(client, tenant_a, eventType="TransformationEvent")
    assert sorted(e["ct:step"] for e in steps) == ["drying", "hulling"]
    green = epcis.lot_uri("http://testserver", {**tenant_a.green, "gtin": GTIN})
    (hulling,) = events_of(query(client, tenant_a, MATCH_outputEPCClass=green))
    assert hulling["ct:step"] == "hulling"
    assert hulling["@context"] == [{"ct": "http://testserver/voc/"}]
    harvests = events_of(query(client, tenant_a, EQ_bizStep="commissioning", perPage=100))
    assert len(harvests) == len(tenant_a.world.trees)
    answer = query(client, tenant_a, EQ_bizStep="sensor_reporting")
    assert_valid(answer.json(), epcis_schema_path)
    assert len(events_of(answer)) == 1  # the plot's summary, once (from the cherry lot)
    # the other cooperative's trail is its own
    theirs = _wait_for(client, tenant_b, eventType="TransformationEvent")
    assert {e["eventID"] for e in theirs}.isdisjoint(e["eventID"] for e in steps)
    # published once: looking again from the start stores nothing more
    conn.commit()
    count = "select count(*) as n from epcis_events where cooperative_id = %s"
    before = conn.execute(count, (tenant_a.coop_id,)).fetchone()
    conn.execute("update epcis_own_marks set chain_seq = 0 where cooperative_id = %s",
                 (tenant_a.coop_id,))  # fmt: skip
    stored, more = epcis_capture.publish_own_events(conn, tenant_a.coop_id, "http://testserver")
    skipped = conn.execute(
        "select chain_seq from epcis_own_marks where cooperative_id = %s", (tenant_a.coop_id,)
    ).fetchone() == {"chain_seq": 0}
    assert not skipped, "the worker was publishing: the look was skipped"
    assert stored == 0 and conn.execute(count, (tenant_a.coop_id,)).fetchone() == before
    conn.rollback()
