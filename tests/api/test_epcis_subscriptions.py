"""EPCIS webhook subscriptions against a real receiver (an http.server thread of the
test) that checks each callback's GS1-Signature: streaming delivery in record-time
order, at least once, through a restart of the API; retries with backoff; a receiver
that keeps failing marks the subscription (status, lastError); scheduled runs; DELETE;
and the destinations this server refuses to call."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace import epcis_subscriptions
from coffeetrace.trace.epcis_capture import EpcisValidation
from tests.api.builders import Tenant
from tests.api.epcis_helpers import capture, document, object_event

TOKEN = "a-long-secret-signature-token"
READ_POINT = "urn:epc:id:sgln:8930000.00009.0"


class Receiver:
    """A webhook receiver: records each callback whose signature is right; answers
    `status` (500 to fail)."""

    def __init__(self) -> None:
        self.status = 200
        self.documents: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
                receiver.calls += 1
                if not hmac.compare_digest(self.headers.get("GS1-Signature", ""), expected):
                    receiver.bad_signatures += 1
                elif receiver.status == 200:
                    receiver.documents.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [
            e
            for d in self.documents
            for e in d["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "epcis_webhook_allow_private": True, "epcis_deliver_poll_s": 0.1,
        "epcis_webhook_retry_base_s": 0.1, "epcis_webhook_retry_max_s": 0.4,
        "epcis_webhook_failing_after": 3, "epcis_webhook_max_events": 2,
        "page_cache_recheck_s": 0.0,
    })  # fmt: skip


def _wait(what: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _events(prefix: int, n: int) -> list[dict[str, Any]]:
    return [
        object_event(eventID=f"urn:uuid:00000000-0000-4000-8000-{prefix:04d}{i:08d}",
                     readPoint={"id": READ_POINT})
        for i in range(n)
    ]  # fmt: skip


def _subscribe(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> Any:
    query = {"name": "hook", "query": {"EQ_readPoint": [READ_POINT]}}
    made = client.post("/epcis/queries", json=query, headers=tenant.auth("operator"))
    assert made.status_code == 201, made.text
    answer = client.post("/epcis/queries/hook/subscriptions", json=body,
                         headers=tenant.auth("operator"))  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert "signatureToken" not in answer.json()
    return answer


def _record_times(events: list[dict[str, Any]]) -> list[str]:
    return [e["recordTime"] for e in events]


def test_streaming_in_record_time_order_through_a_restart(
    hook_settings: Settings, tenant_a: Tenant, receiver: Receiver
) -> None:
    first, second, third = _events(1, 3), _events(2, 3), _events(3, 2)
    with TestClient(create_app(hook_settings)) as client:
        sub = _subscribe(client, tenant_a, {"dest": receiver.url, "signatureToken": TOKEN,
                                            "stream": True})  # fmt: skip
        location = sub.headers["location"]
        assert capture(client, tenant_a, document(*first))["success"]
        _wait(lambda: len(receiver.events()) == 3)
        receiver.status = 500  # the receiver goes down: the next events wait, retried
        assert capture(client, tenant_a, document(*second))["success"]
        _wait(lambda: receiver.calls >= 5)
    # the API restarts while deliveries are pending; the cursor is in the database
    receiver.status = 200
    with TestClient(create_app(hook_settings)) as client:
        assert capture(client, tenant_a, document(*third))["success"]
        _wait(lambda: len({e["eventID"] for e in receiver.events()}) == 8)
        state = client.get(location, headers=tenant_a.auth("read-only")).json()
        assert state["status"] == "active" and "lastError" not in state
        assert state["lastNotifiedAt"] and state["minRecordTime"]
    received = receiver.events()
    assert receiver.bad_signatures == 0
    assert [e["eventID"] for e in received] == [e["eventID"] for e in first + second + third]
    assert _record_times(received) == sorted(_record_times(received))
    assert all(len(d["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) <= 2
               for d in receiver.documents)  # fmt: skip
    doc = receiver.documents[0]
    assert doc["type"] == "EPCISQueryDocument"
    assert doc["epcisBody"]["queryResults"]["subscriptionID"] == location.rsplit("/", 1)[1]


def test_a_failing_receiver_marks_the_subscription(
    hook_settings: Settings, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.status = 500
    with TestClient(create_app(hook_settings)) as client:
        sub = _subscribe(client, tenant_a, {"dest": receiver.url, "signatureToken": TOKEN,
                                            "stream": True})  # fmt: skip
        location = sub.headers["location"]
        assert capture(client, tenant_a, document(*_events(4, 1)))["success"]

        def failing() -> bool:
            state = client.get(location, headers=tenant_a.auth()).json()
            return bool(state["status"] == "failing")

        _wait(failing)
        state = client.get(location, headers=tenant_a.auth()).json()
        assert state["attempts"] >= 3 and "500" in state["lastError"]
        listed = client.get("/epcis/queries/hook/subscriptions", headers=tenant_a.auth()).json()
        assert [s["status"] for s in listed] == ["failing"]
        # backoff: a few calls, not one per round
        assert receiver.calls <= 8
        receiver.status = 200  # back: delivered, active again
        _wait(lambda: len(receiver.events()) == 1)
        _wait(lambda: client.get(location, headers=tenant_a.auth()).json()["status"] == "active")


def test_scheduled_report_if_empty_and_delete(
    hook_settings: Settings, tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver
) -> None:
    with TestClient(create_app(hook_settings)) as client:
        body = {"dest": receiver.url, "signatureToken": TOKEN, "reportIfEmpty": True,
                "schedule": {"second": "[0-59]"}}  # fmt: skip
        sub = _subscribe(client, tenant_a, body)
        location = sub.headers["location"]
        assert sub.json()["schedule"] == {"second": "[0-59]"} and "stream" not in sub.json()
        _wait(lambda: len(receiver.documents) >= 1)  # an empty report each second
        assert receiver.events() == []
        assert client.get(location, headers=tenant_b.auth()).status_code == 404
        assert client.delete(location, headers=tenant_b.auth()).status_code == 404
        assert client.delete(location, headers=tenant_a.auth("operator")).status_code == 204
        assert client.get(location, headers=tenant_a.auth()).status_code == 404
        calls = receiver.calls
        time.sleep(1.5)
        assert receiver.calls <= calls + 1  # at most the one in flight


def test_refused_subscriptions(
    settings: Settings, hook_settings: Settings, tenant_a: Tenant, receiver: Receiver
) -> None:
    with TestClient(create_app(hook_settings)) as client:
        query = {"name": "q", "query": {}}
        assert client.post("/epcis/queries", json=query, headers=tenant_a.auth()).status_code == 201
        cases = [
            {"dest": "ftp://example.com/x", "signatureToken": TOKEN, "stream": True},
            {"dest": "file:///etc/passwd", "signatureToken": TOKEN, "stream": True},
            {"dest": receiver.url, "stream": True},
            {"dest": receiver.url, "signatureToken": "short", "stream": True},
            {"dest": receiver.url, "signatureToken": TOKEN},
            {"dest": receiver.url, "signatureToken": TOKEN, "stream": True,
             "schedule": {"hour": "1"}},
            {"dest": receiver.url, "signatureToken": TOKEN, "schedule": {"hour": "24"}},
            {"dest": receiver.url, "signatureToken": TOKEN, "schedule": {"hour": "*/5"}},
            {"dest": receiver.url, "signatureToken": TOKEN,
             "schedule": {"month": "2", "dayOfMonth": "30"}},
        ]  # fmt: skip
        for body in cases:
            answer = client.post("/epcis/queries/q/subscriptions", json=body,
                                 headers=tenant_a.auth())  # fmt: skip
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["type"] == "epcisException:ValidationException"
        missing = client.post("/epcis/queries/nope/subscriptions", json=cases[0],
                              headers=tenant_a.auth())  # fmt: skip
        assert missing.status_code == 404
    # by default, loopback and private destinations are refused
    with TestClient(create_app(settings)) as client:
        for dest in (receiver.url, "http://10.0.0.7/hook", "http://169.254.169.254/latest",
                     "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/"):  # fmt: skip
            body = {"dest": dest, "signatureToken": TOKEN, "stream": True}
            answer = client.post("/epcis/queries/q/subscriptions", json=body,
                                 headers=tenant_a.auth())  # fmt: skip
            assert answer.status_code == 400, dest
            assert "COFFEETRACE_EPCIS_WEBHOOK_ALLOW_PRIVATE" in answer.json()["detail"]


def test_schedules() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # a Wednesday
    daily = epcis_subscriptions.parse_schedule({"hour": "1", "minute": "5"})
    assert epcis_subscriptions.next_time(daily, at) == datetime(2024, 5, 2, 1, 5, tzinfo=UTC)
    hourly = epcis_subscriptions.parse_schedule({"minute": "[0-1],30"})
    assert epcis_subscriptions.next_time(hourly, at) == datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    monday = epcis_subscriptions.parse_schedule({"dayOfWeek": "1"})
    assert epcis_subscriptions.next_time(monday, at) == datetime(2024, 5, 6, tzinfo=UTC)
    leap = epcis_subscriptions.parse_schedule({"month": "2", "dayOfMonth": "29", "hour": "3"})
    assert epcis_subscriptions.next_time(leap, at) == datetime(2028, 2, 29, 3, tzinfo=UTC)
    for bad in ({}, {"week": "1"}, {"second": "60"}, {"minute": "[5-1]"}, {"hour": 1}):
        with pytest.raises(EpcisValidation):
            epcis_subscriptions.parse_schedule(bad)


def test_an_open_older_transaction_holds_deliveries_back(
    db_url: str, hook_settings: Settings, tenant_a: Tenant, receiver: Receiver
) -> None:
    """An event is delivered only once no transaction that began before it is still open:
    such a transaction could still commit events recorded earlier, which a cursor already
    past them would skip."""
    with TestClient(create_app(hook_settings)) as client:
        _subscribe(client, tenant_a, {"dest": receiver.url, "signatureToken": TOKEN,
                                      "stream": True})  # fmt: skip
        with psycopg.connect(db_url) as older:
            older.execute("select 1")  # a transaction is open from here
            assert capture(client, tenant_a, document(*_events(5, 1)))["success"]
            time.sleep(1.0)  # ten rounds
            assert receiver.events() == []
            older.rollback()
        _wait(lambda: len(receiver.events()) == 1)
