"""EPCIS named queries: created with GS1's query language (checked against GS1's
query-schema.json and against what GET /events implements), listed, read, deleted, and
their events served through GET /events' code path with its paging; each organisation
sees only its own."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.api.builders import Tenant
from tests.api.epcis_helpers import capture, document, events_of, object_event

SHIP = [
    object_event(eventID=f"urn:uuid:00000000-0000-4000-8000-00000000010{i}",
                 eventTime=f"2024-05-0{i + 1}T08:00:00.000+07:00")
    for i in range(5)
]  # fmt: skip
RECEIVE = object_event(
    eventID="urn:uuid:00000000-0000-4000-8000-000000000200",
    bizStep="receiving",
    disposition="in_progress",
)


def _post(client: TestClient, tenant: Tenant, body: Any, role: str = "operator") -> Any:
    return client.post(
        "/epcis/queries",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **tenant.auth(role)},
    )


def test_create_read_list_delete(client: TestClient, tenant_a: Tenant) -> None:
    body = {
        "name": "shipments",
        "query": {"EQ_bizStep": ["shipping"], "eventType": ["ObjectEvent"]},
    }
    created = _post(client, tenant_a, body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/epcis/queries/shipments"
    assert created.headers["GS1-EPCIS-Version"] == "2.0.0"
    again = _post(client, tenant_a, body)
    assert again.status_code == 409
    assert again.json()["type"] == "epcisException:ResourceAlreadyExistsException"
    got = client.get("/epcis/queries/shipments", headers=tenant_a.auth("read-only"))
    assert got.status_code == 200 and got.json() == body
    for name in ("b-query", "c-query"):
        assert _post(client, tenant_a, {"name": name, "query": {}}).status_code == 201
    first = client.get("/epcis/queries", params={"perPage": 2}, headers=tenant_a.auth())
    assert [q["name"] for q in first.json()] == ["b-query", "c-query"]
    assert 'rel="next"' in first.headers["link"]
    url = first.headers["link"].split(">")[0].lstrip("<")
    rest = client.get(url, headers=tenant_a.auth())
    assert [q["name"] for q in rest.json()] == ["shipments"] and "link" not in rest.headers
    gone = client.delete("/epcis/queries/shipments", headers=tenant_a.auth("operator"))
    assert gone.status_code == 204
    assert client.get("/epcis/queries/shipments", headers=tenant_a.auth()).status_code == 404
    assert client.delete("/epcis/queries/shipments", headers=tenant_a.auth()).status_code == 404


def test_refusals_name_the_field(client: TestClient, tenant_a: Tenant) -> None:
    cases = [
        ({"name": "q", "query": {"eventType": "ObjectEvent"}}, "ValidationException", "eventType"),
        ({"name": "q", "query": {"EQ_action": ["SHOUT"]}}, "ValidationException", "EQ_action"),
        ({"name": "q", "query": {"GE_eventTime": "yesterday"}}, "ValidationException",
         "GE_eventTime"),
        ({"name": "q", "query": {"EQ_quantity": [5]}}, "QueryParameterException", "EQ_quantity"),
        ({"name": "q", "query": {"perPage": 5}}, "ValidationException", "perPage"),
        ({"name": "a/b", "query": {}}, "ValidationException", "name"),
        ({"query": {}}, "ValidationException", "name"),
        ({"name": "q"}, "ValidationException", "query"),
        ({"name": "q", "query": {}, "extra": 1}, "ValidationException", "extra"),
    ]  # fmt: skip
    for body, exception, field in cases:
        answer = _post(client, tenant_a, body)
        assert answer.status_code == 400, (body, answer.text)
        problem = answer.json()
        assert problem["type"] == f"epcisException:{exception}", (body, problem)
        assert field in problem["detail"], (body, problem)
    assert _post(client, tenant_a, {"name": "q", "query": {}}, role="read-only").status_code == 403
    wrong = client.post("/epcis/queries", content=b"name=q", headers={
        "Content-Type": "text/plain", **tenant_a.auth()})  # fmt: skip
    assert wrong.status_code == 415


def test_events_of_a_named_query_page_like_events(client: TestClient, tenant_a: Tenant) -> None:
    job = capture(client, tenant_a, document(*SHIP, RECEIVE))
    assert job["success"], job
    body = {"name": "ship", "query": {"EQ_bizStep": ["shipping"], "GE_eventTime":
            "2024-05-02T00:00:00Z"}}  # fmt: skip
    assert _post(client, tenant_a, body).status_code == 201
    seen: list[str] = []
    url: str | None = "/epcis/queries/ship/events?perPage=2"
    while url:
        answer = client.get(url, headers=tenant_a.auth("read-only"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["epcisBody"]["queryResults"]["queryName"] == "ship"
        seen += [e["eventID"] for e in events_of(answer)]
        link = answer.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
    # the same as GET /events with the same parameters
    direct = client.get("/epcis/events", params={"EQ_bizStep": "shipping", "GE_eventTime":
                        "2024-05-02T00:00:00Z"}, headers=tenant_a.auth())  # fmt: skip
    assert seen == [e["eventID"] for e in events_of(direct)]
    assert seen == [e["eventID"] for e in SHIP[1:]]
    extra = client.get("/epcis/queries/ship/events", params={"EQ_action": "ADD"},
                       headers=tenant_a.auth())  # fmt: skip
    assert extra.status_code == 400
    assert extra.json()["type"] == "epcisException:QueryParameterException"


def test_an_organisation_sees_only_its_own_queries(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    capture(client, tenant_a, document(*SHIP))
    assert _post(client, tenant_a, {"name": "mine", "query": {}}).status_code == 201
    assert client.get("/epcis/queries", headers=tenant_b.auth()).json() == []
    for path in ("/epcis/queries/mine", "/epcis/queries/mine/events",
                 "/epcis/queries/mine/subscriptions"):  # fmt: skip
        answer = client.get(path, headers=tenant_b.auth())
        assert answer.status_code == 404, path
        assert answer.json()["type"] == "epcisException:NoSuchNameException"
    assert client.delete("/epcis/queries/mine", headers=tenant_b.auth()).status_code == 404
    # B may use the same name for its own query, which sees B's (no) events
    assert _post(client, tenant_b, {"name": "mine", "query": {}}).status_code == 201
    answer = client.get("/epcis/queries/mine/events", headers=tenant_b.auth())
    assert events_of(answer) == []
    assert len(events_of(client.get("/epcis/queries/mine/events", headers=tenant_a.auth()))) == 5
