"""Helpers of the EPCIS API tests: capture a document and wait for its job, query, and
check answers against GS1's JSON schema."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.api.builders import Tenant

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXAMPLE_NS = {"example": "http://ns.example.com/epcis/"}


def document(*events: dict[str, Any], context: list[Any] | None = None) -> dict[str, Any]:
    """An EPCISDocument of `events`."""
    return {
        "@context": context if context is not None else [CONTEXT, EXAMPLE_NS],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00.000Z",
        "epcisBody": {"eventList": [copy.deepcopy(e) for e in events]},
    }


def object_event(**fields: Any) -> dict[str, Any]:
    """A valid ObjectEvent; `fields` add to or replace its own."""
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2024-05-01T08:00:00.000+07:00",
        "eventTimeZoneOffset": "+07:00",
        "epcList": ["urn:epc:id:sgtin:8930000.000001.1001"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:8930000.00001.0"},
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def post_capture(
    client: TestClient,
    tenant: Tenant,
    doc: Any,
    *,
    behaviour: str | None = None,
    role: str = "operator",
    headers: dict[str, str] | None = None,
) -> Response:
    sent = {"Content-Type": "application/ld+json", **tenant.auth(role), **(headers or {})}
    if behaviour is not None:
        sent["GS1-Capture-Error-Behaviour"] = behaviour
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post("/epcis/capture", content=body, headers=sent)


def wait_job(client: TestClient, tenant: Tenant, location: str, timeout_s: float = 30) -> Any:
    """The capture job at `location` once it no longer runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(location, headers=tenant.auth("read-only"))
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if not job["running"]:
            return job
        assert time.monotonic() < deadline, f"capture job still running: {job}"
        time.sleep(0.05)


def capture(client: TestClient, tenant: Tenant, doc: Any, *, behaviour: str | None = None) -> Any:
    """Capture `doc` and wait for its job; the job."""
    answer = post_capture(client, tenant, doc, behaviour=behaviour)
    assert answer.status_code == 202, answer.text
    return wait_job(client, tenant, answer.headers["location"])


def query(client: TestClient, tenant: Tenant, path: str = "/epcis/events", **params: Any) -> Any:
    answer = client.get(path, params=params, headers=tenant.auth("read-only"))
    assert answer.status_code == 200, answer.text
    return answer


def events_of(answer: Response) -> list[dict[str, Any]]:
    return answer.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def event_path(event_id: str) -> str:
    return "/epcis/events/" + quote(event_id, safe="")


def validator(schema_path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        json.loads(schema_path.read_text()),
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )


def assert_valid(doc: Any, schema_path: Path) -> None:
    errors = sorted(validator(schema_path).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
