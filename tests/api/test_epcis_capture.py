"""EPCIS capture over the REST bindings: GS1's examples captured and queried back intact,
invalid documents refused with the bindings' exception types, rollback and proceed,
idempotent re-capture, one chain event per job, the limits (the size before the body is
read), authorisation, tenant isolation, and a capture accepted before a restart."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace import epcis_capture, epcis_hash, verification
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant
from tests.api.epcis_helpers import (
    CONTEXT,
    assert_valid,
    capture,
    document,
    event_path,
    events_of,
    object_event,
    post_capture,
    query,
    wait_job,
)
from tests.api.server import serve
from tests.conftest import SHARED

EXAMPLES = SHARED / "reference" / "epcis" / "examples"
EXAMPLE_FILES = (
    [pytest.param(p, id=p.stem) for p in sorted(EXAMPLES.glob("*.jsonld"))]
    if EXAMPLES.is_dir()
    else [
        pytest.param(None, marks=pytest.mark.skip(reason=f"GS1's examples are not at {EXAMPLES}"))
    ]
)


@pytest.fixture
def coop_a(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys, with_lots=False)


@pytest.fixture
def coop_b(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys, with_lots=False, gtin="08930000000026")


def _problem(answer: Any, status: int, exception: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"epcisException:{exception}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- GS1's examples ------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLE_FILES)
def test_official_example_is_captured_and_queried_back_intact(
    path: Path, client: TestClient, coop_a: Tenant, epcis_schema_path: Path
) -> None:
    doc = json.loads(path.read_text())
    job = capture(client, coop_a, doc)
    assert job["success"] and job["errors"] == [] and job["captureErrorBehaviour"] == "rollback"
    assert job["finishedAt"] >= job["createdAt"]
    for sent in doc["epcisBody"]["eventList"]:
        answer = query(client, coop_a, event_path(sent["eventID"]))
        assert_valid(answer.json(), epcis_schema_path)
        (got,) = events_of(answer)
        assert {k: got[k] for k in sent} == sent, "a field came back changed"
        assert set(got) - set(sent) == {"recordTime", "@context"}
        # the document's namespaces travel with the event: its extensions stay readable
        assert got["@context"] == [c for c in doc["@context"] if c != CONTEXT]
        (same,) = events_of(query(client, coop_a, EQ_eventID=sent["eventID"]))
        assert same == got


# --- refusals ------------------------------------------------------------------------------
def test_a_document_without_context_is_refused_at_once(client: TestClient, coop_a: Tenant) -> None:
    doc = document(object_event())
    del doc["@context"]
    body = _problem(post_capture(client, coop_a, doc), 400, "ValidationException")
    assert "@context" in body["detail"]
    not_json = post_capture(client, coop_a, b'{"type": "EPCISDocument", ')
    assert "not JSON" in _problem(not_json, 400, "ValidationException")["detail"]
    no_events = document()
    del no_events["epcisBody"]["eventList"]
    assert "eventList" in _problem(post_capture(client, coop_a, no_events), 400,
                                   "ValidationException")["detail"]  # fmt: skip
    # nothing was accepted
    assert client.get("/epcis/capture", headers=coop_a.auth()).json() == []


INVALID_EVENTS = {
    "invalid action": (object_event(action="MOVE"), "action"),
    "bad eventTime format": (object_event(eventTime="2024-05-01 08:00"), "eventTime"),
    "quantity as text": (
        object_event(
            epcList=None,
            quantityList=[{"epcClass": "urn:epc:class:lgtin:8930000.000001.L1",
                           "quantity": "10", "uom": "KGM"}],
        ),
        "quantityList[0].quantity",
    ),
    "non-standard bizStep without a URI": (object_event(bizStep="roasting"), "bizStep"),
    "unknown field in a quantity list": (
        object_event(
            epcList=None,
            quantityList=[{"epcClass": "urn:epc:class:lgtin:8930000.000001.L1",
                           "quantity": 10, "colour": "brown"}],
        ),
        "quantityList[0]",
    ),
}  # fmt: skip


def test_a_hostile_body_is_a_validation_exception_not_a_server_error(
    client: TestClient, coop_a: Tenant
) -> None:
    deep = b'{"a":' * 3000 + b"1" + b"}" * 3000  # json.loads raised RecursionError: a 500
    nested = json.dumps(document(object_event(ilmd={"x": "HERE"})))
    too_deep = nested.replace('"HERE"', "[" * 70 + "1" + "]" * 70).encode()
    surrogate = nested.replace("HERE", "\\ud800").encode()  # the JSON escape of a lone one
    for body in (deep, too_deep, surrogate):
        problem = _problem(post_capture(client, coop_a, body), 400, "ValidationException")
        assert "not JSON" in problem["detail"], problem
    assert client.get("/epcis/capture", headers=coop_a.auth()).json() == []


@pytest.mark.parametrize(("event", "field"), INVALID_EVENTS.values(), ids=INVALID_EVENTS)
def test_an_invalid_event_is_refused_naming_the_event_and_field(
    event: dict[str, Any], field: str, client: TestClient, coop_a: Tenant
) -> None:
    event = {**event, "eventID": "urn:uuid:6d1b4d2c-5a40-4a0b-9d55-000000000001"}
    job = capture(client, coop_a, document(object_event(), event))
    assert job["running"] is False and job["success"] is False
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException" and error["status"] == 400
    assert error["detail"].startswith(f"event 1 ({event['eventID']}): {field}: ")
    assert error["instance"] == event["eventID"]
    # rollback, the default: the valid event was not stored either
    assert events_of(query(client, coop_a)) == []


def test_the_unknown_field_and_the_standard_bizstep_are_named(
    client: TestClient, coop_a: Tenant
) -> None:
    job = capture(client, coop_a, document(INVALID_EVENTS["unknown field in a quantity list"][0]))
    assert "colour" in job["errors"][0]["detail"]
    fine = capture(client, coop_a, document(object_event(bizStep="https://x.example/roasting")))
    assert fine["success"], "a non-standard bizStep as a URI is fine"


def test_rollback_stores_nothing_proceed_stores_the_valid_events(
    client: TestClient, coop_a: Tenant
) -> None:
    good = [object_event(epcList=[f"urn:epc:id:sgtin:8930000.000001.{n}"]) for n in (1, 2)]
    doc = document(good[0], object_event(action="MOVE"), good[1])
    rolled_back = capture(client, coop_a, doc, behaviour="rollback")
    assert not rolled_back["success"] and len(rolled_back["errors"]) == 1
    assert events_of(query(client, coop_a)) == []

    proceeded = capture(client, coop_a, doc, behaviour="proceed")
    assert proceeded["captureErrorBehaviour"] == "proceed"
    assert not proceeded["success"]  # some events were refused...
    assert proceeded["errors"][0]["detail"].startswith("event 1 (ObjectEvent): action")
    stored = events_of(query(client, coop_a))  # ...and the others stored
    assert [e["epcList"] for e in stored] == [g["epcList"] for g in good]

    wrong = post_capture(client, coop_a, doc, behaviour="all")  # the server's word only
    assert "GS1-Capture-Error-Behaviour" in _problem(wrong, 400, "ValidationException")["detail"]


def test_media_type_version_and_authorisation(client: TestClient, coop_a: Tenant) -> None:
    doc = document(object_event())
    text = post_capture(client, coop_a, doc, headers={"Content-Type": "text/plain"})
    _problem(text, 415, "UnsupportedMediaTypeException")
    old = post_capture(client, coop_a, doc, headers={"GS1-EPCIS-Version": "1.2"})
    _problem(old, 406, "NotAcceptableException")
    anonymous = client.post(
        "/epcis/capture", content=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    _problem(anonymous, 401, "SecurityException")
    assert anonymous.headers["gs1-epcis-version"] == "2.0.0"
    reader = post_capture(client, coop_a, doc, role="read-only")
    assert "operator" in _problem(reader, 403, "SecurityException")["detail"]
    assert post_capture(client, coop_a, doc, role="admin").status_code == 202
    job_list = client.get("/epcis/capture", headers={"X-API-Key": coop_a.keys["read-only"]})
    assert job_list.status_code == 200 and len(job_list.json()) == 1


# --- identity, idempotency, the chain -------------------------------------------------------
def test_an_event_without_id_gets_its_event_hash_and_is_stored_once(
    client: TestClient, coop_a: Tenant, conn: psycopg.Connection, keys: KeyRing
) -> None:
    no_id = object_event(**{"example:note": "hashed"})
    given = object_event(eventID="urn:uuid:0d3a2e0e-6f56-4f7e-8a4b-1c1d2e3f4a5b", action="ADD")
    first = capture(client, coop_a, document(no_id, given))
    assert first["success"]
    expected_id = epcis_hash.event_hash(
        no_id, epcis_hash.context_prefixes([CONTEXT, {"example": "http://ns.example.com/epcis/"}])
    )
    stored = events_of(query(client, coop_a))
    assert [e["eventID"] for e in stored] == [expected_id, given["eventID"]]

    # the same events again (also reordered, the first without id written otherwise): the
    # job succeeds, nothing is stored twice, and the chain gets no second entry
    same = {**no_id, "eventTime": "2024-05-01T01:00:00Z"}  # the same instant in UTC
    again = capture(client, coop_a, document(given, same, same))
    assert again["success"] and again["errors"] == []
    assert [e["eventID"] for e in events_of(query(client, coop_a))] == [
        expected_id,
        given["eventID"],
    ]
    chain = conn.execute(
        "select seq, payload from trace_events where cooperative_id = %s and kind = %s",
        (coop_a.coop_id, epcis_capture.CHAIN_KIND),
    ).fetchall()
    assert len(chain) == 1
    (entry,) = chain
    assert entry["payload"]["capture_id"] == first["captureID"]
    assert entry["payload"]["events"] == [
        {"eventID": expected_id, "hash": expected_id},
        {"eventID": given["eventID"], "hash": epcis_hash.event_hash(given)},
    ]
    conn.commit()  # a fresh snapshot: the API committed after the fixture's last read
    assert verification.verify_chain(conn, coop_a.coop_id, keys=keys)["ok"]


def test_one_chain_event_per_capture_job(
    client: TestClient, coop_a: Tenant, conn: psycopg.Connection
) -> None:
    events = [object_event(epcList=[f"urn:epc:id:sgtin:8930000.000001.{n}"]) for n in range(25)]
    capture(client, coop_a, document(*events[:20]))
    capture(client, coop_a, document(*events[15:]))  # 5 known, 5 new
    rows = conn.execute(
        "select jsonb_array_length(payload->'events') as n from trace_events"
        " where cooperative_id = %s and kind = %s order by seq",
        (coop_a.coop_id, epcis_capture.CHAIN_KIND),
    ).fetchall()
    assert [r["n"] for r in rows] == [20, 5]


# --- limits ----------------------------------------------------------------------------------
def test_more_events_than_the_capture_limit_is_refused(settings: Settings, coop_a: Tenant) -> None:
    app = create_app(settings.model_copy(update={"epcis_capture_max_events": 2}))
    with TestClient(app) as client:
        answer = post_capture(client, coop_a, document(*[object_event()] * 3))
        body = _problem(answer, 413, "CaptureLimitExceededException")
        assert "3 events" in body["detail"] and "at most 2" in body["detail"]
        assert answer.headers["gs1-epcis-capture-limit"] == "2"
        assert post_capture(client, coop_a, document(*[object_event()] * 2)).status_code == 202


def _raw(base: str, head: bytes, then: bytes) -> tuple[bytes, bool]:
    """Send a request head and the start of its body; the answer, and whether the server
    closed the connection rather than wait for the rest of the body."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname or "", url.port or 80), timeout=10) as sock:
        sock.sendall(head + then)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return data, False
            if not chunk:
                return data, True
            data += chunk


def test_the_file_size_limit_is_enforced_before_the_body_is_read(
    settings: Settings, coop_a: Tenant
) -> None:
    small = settings.model_copy(update={"epcis_capture_max_bytes": 4096})
    with serve(small) as base:
        # 20 MB announced, a few bytes sent: the 413 comes at once, before the key is
        # checked or the body read, and the connection is closed
        head = (
            b"POST /epcis/capture HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n"
        )
        answer, closed = _raw(base, head, b'{"type":')
        assert closed, "the server waited for the announced body"
        assert b" 413 " in answer.partition(b"\r\n")[0]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["details"]["max_bytes"] == 4096
    app = create_app(small)
    with TestClient(app) as client:
        fits = post_capture(client, coop_a, document(object_event()))
        assert fits.status_code == 202
        assert fits.headers["gs1-epcis-capture-file-size-limit"] == "4096"
        big = document(*[object_event()] * 20)
        assert post_capture(client, coop_a, big).status_code == 413


# --- tenants ---------------------------------------------------------------------------------
def test_a_tenant_sees_and_captures_only_its_own(
    client: TestClient, coop_a: Tenant, coop_b: Tenant
) -> None:
    shared_id = "urn:uuid:3f1b3f2a-8a3e-4c55-b0a5-7c0ffee00001"
    sent = client.post(
        "/epcis/capture",
        content=json.dumps(document(object_event(eventID=shared_id))),
        headers={"Content-Type": "application/json", **coop_a.auth("operator")},
    )
    location = sent.headers["location"]
    assert wait_job(client, coop_a, location)["success"]
    assert client.get(location, headers=coop_b.auth()).status_code == 404
    assert client.get("/epcis/capture", headers=coop_b.auth()).json() == []
    assert events_of(query(client, coop_b)) == []
    missing = client.get(event_path(shared_id), headers=coop_b.auth())
    _problem(missing, 404, "NoSuchNameException")
    # B capturing an event of the same id stores B's own, and A's stays A's
    other = object_event(eventID=shared_id, action="ADD")
    assert capture(client, coop_b, document(other))["success"]
    (b_event,) = events_of(query(client, coop_b))
    (a_event,) = events_of(query(client, coop_a))
    assert (a_event["action"], b_event["action"]) == ("OBSERVE", "ADD")


# --- durability ------------------------------------------------------------------------------
@pytest.fixture
def app_not_started(settings: Settings) -> Iterator[FastAPI]:
    yield create_app(settings)


def test_a_capture_accepted_before_a_restart_is_processed_after_it(
    app_not_started: FastAPI, coop_a: Tenant, conn: psycopg.Connection
) -> None:
    # accepted and committed, then the API stopped before its worker got to it
    limits = epcis_capture.CaptureLimits(max_events=10, max_bytes=10**6)
    body = json.dumps(document(object_event())).encode()
    job = epcis_capture.accept(conn, coop_a.coop_id, body, "rollback", limits)
    conn.commit()
    with TestClient(app_not_started) as client:  # the restarted API
        done = wait_job(client, coop_a, f"/epcis/capture/{job['id']}")
        assert done["success"]
        assert len(events_of(query(client, coop_a))) == 1
    document_left = conn.execute(
        "select document from epcis_captures where id = %s", (job["id"],)
    ).fetchone()
    assert document_left == {"document": None}  # its events are stored: the copy is gone


def test_the_capture_job_of_an_unknown_id(client: TestClient, coop_a: Tenant) -> None:
    for unknown in ("id9261379075", "00000000-0000-0000-0000-000000000000"):
        answer = client.get(f"/epcis/capture/{unknown}", headers=coop_a.auth())
        _problem(answer, 404, "NoSuchNameException")


def test_capture_jobs_page_newest_first(client: TestClient, coop_a: Tenant) -> None:
    ids = [capture(client, coop_a, document(object_event()))["captureID"] for _ in range(3)]
    first = client.get("/epcis/capture", params={"perPage": 2}, headers=coop_a.auth())
    assert [j["captureID"] for j in first.json()] == ids[::-1][:2]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    rest = client.get(link[1 : link.index(">")], headers=coop_a.auth())
    assert [j["captureID"] for j in rest.json()] == ids[:1] and "link" not in rest.headers
    doc = copy.deepcopy(rest.json()[0])
    assert set(doc) == {
        "captureID", "createdAt", "finishedAt", "running", "success",
        "captureErrorBehaviour", "errors",
    }  # fmt: skip


def test_what_json_allows_and_the_store_cannot_hold_refuses_the_event_only(
    client: TestClient, coop_a: Tenant
) -> None:
    odd = object_event(**{"example:note": "nul \u0000 inside"})
    job = capture(client, coop_a, document(object_event(), odd), behaviour="proceed")
    (error,) = job["errors"]
    assert error["detail"].startswith("event 1 (ObjectEvent): ") and "U+0000" in error["detail"]
    assert len(events_of(query(client, coop_a))) == 1
    not_an_event = document(object_event())
    not_an_event["epcisBody"]["eventList"].append(7)
    body = _problem(post_capture(client, coop_a, not_an_event), 400, "ValidationException")
    assert body["detail"].startswith("epcisBody.eventList[1]: ")
