"""Hostile JSON bodies on the endpoints of shipments, screenings and EPCIS named queries and
subscriptions: every string of a valid body replaced in turn with text that PostgreSQL or
Unicode cannot hold (NUL, a lone surrogate), every value with a wrong type, free-form
objects with the same inside them, and deep nesting. Each answer is a 4xx with a reason,
never a 500, and nothing of it is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from coffeetrace.api.schemas import TransformationIn
from tests.api.builders import Tenant
from tests.api.test_shipments_api import _body, _receipt, chain  # noqa: F401 (fixture)

NUL = "Ea Tu\u0000"
SURROGATE = "Ea Tu \ud800"  # json.dumps writes it as the escape "\ud800", as a client would
WRONG_TYPES: list[Any] = [True, {"$gt": ""}, [[[]]], 2**70]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _leaves(inner, (*path, index))
    else:
        yield path, value


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


FREE_FORM = {"measurements"}  # objects whose values may be of any JSON type


def _mutations(body: Any) -> Iterator[tuple[str, Any]]:
    """(what, body) for each leaf: text no database can hold, then wrong types (except in
    the free-form objects, where any type is a value)."""
    for path, value in _leaves(body):
        where = "/".join(map(str, path))
        free = any(step in FREE_FORM for step in path)
        if isinstance(value, str):
            yield f"{where}=NUL", _replaced(body, path, NUL)
            yield f"{where}=surrogate", _replaced(body, path, SURROGATE)
            yield f"{where}=100k", _replaced(body, path, "x" * 100_000)
        for wrong in WRONG_TYPES:
            if type(wrong) is not type(value) and not free:
                yield f"{where}={json.dumps(wrong)[:12]}", _replaced(body, path, wrong)


def _refused(client: TestClient, url: str, body: Any, headers: dict[str, str]) -> list[str]:
    """Post every mutation of `body`; the ones not answered 4xx with a reason."""
    wrong = []
    for what, mutated in _mutations(body):
        r = client.post(
            url,
            content=json.dumps(mutated).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        reason = r.json() if r.headers.get("content-type", "").endswith("json") else None
        if not (400 <= r.status_code < 500 and reason):
            wrong.append(f"{what}: {r.status_code} {r.text[:160]}")
    return wrong


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _free_form(base: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """`base` with the free-form object `key` holding what no database text can hold."""
    return [
        {**base, key: {"moisture_pct": 12.4, "note": NUL}},
        {**base, key: {"note\u0000": 1}},
        {**base, key: {"note": SURROGATE}},
        {**base, key: {SURROGATE: 1}},
        {**base, key: json.loads(_deep(200))},
    ]


def _count(conn: psycopg.Connection, table: str) -> int:
    conn.rollback()
    row = conn.execute(f"select count(*) as n from {table}").fetchone()  # noqa: S608 (fixed names)
    assert row is not None
    return int(row["n"])


def test_shipment_bodies(client: TestClient, conn: psycopg.Connection, chain: dict) -> None:  # noqa: F811
    coop, exporter = chain["coop"], chain["exporter"]
    before = _count(conn, "shipments")
    assert _refused(client, "/v1/shipments", _body(coop), coop.auth("operator")) == []
    for top in (_deep(10_000), b'{"receiver": "bmt-export", "lines": ' + _deep(5_000) + b"}"):
        r = client.post(
            "/v1/shipments",
            content=top,
            headers={**coop.auth("operator"), "Content-Type": "application/json"},
        )
        assert 400 <= r.status_code < 500 and r.json()["message"], r.text[:200]
    assert _count(conn, "shipments") == before  # nothing of it stored
    sent = client.post("/v1/shipments", json=_body(coop), headers=coop.auth("operator"))
    assert sent.status_code == 201, sent.text
    sid = sent.json()["id"]
    theirs = exporter["auth"]["operator"]
    transport = {"kind": "departure_port", "occurred_at": "2025-12-12T12:00:00+07:00",
                 "place": "Cát Lái", "note": "gate in"}  # fmt: skip
    for url, body in (
        (f"/v1/shipments/{sid}/transport-events", transport),
        (f"/v1/shipments/{sid}/reject", {"reason": "wet bags"}),
        (f"/v1/shipments/{sid}/accept", _receipt(5.0)),
    ):
        assert _refused(client, url, body, theirs) == [], url
    for body in _free_form(_receipt(5.0), "measurements"):
        r = client.post(
            f"/v1/shipments/{sid}/accept",
            content=json.dumps(body).encode(),  # escaped, as a client would send it
            headers={**theirs, "Content-Type": "application/json"},
        )
        assert 400 <= r.status_code < 500 and r.json()["message"], (body, r.text[:200])
    still = client.get(f"/v1/shipments/{sid}", headers=theirs)
    assert still.json()["status"] == "in_transit"  # no hostile body moved it


def test_screening_bodies(client: TestClient, conn: psycopg.Connection, tenant_a: Tenant) -> None:
    before = _count(conn, "plot_screenings")
    plot = tenant_a.world.plot
    entry = {"risk": "high", "source": "Global Forest Watch", "analysis_date": "2026-01-05",
             "analysis_id": "gfw-1", "note": "checked", "mitigation_note": "visit"}  # fmt: skip
    headers = tenant_a.auth("operator")
    assert _refused(client, f"/v1/plots/{plot['id']}/screenings", entry, headers) == []
    row = {"plot": plot["code"], "risk": "low", "source": "Whisp", "analysis_id": "w-1",
           "analysis_date": "2026-01-20"}  # fmt: skip
    assert _refused(client, "/v1/plots/screenings", [row], headers) == []
    csv_head = b"plot,risk,source,analysis_id,analysis_date\n"
    for hostile in (
        b"P-1\x00,low,Whisp,w,2026-01-20\n",
        b"P-1,low,Whisp \xed\xa0\x80,w,2026-01-20\n",  # a lone surrogate as UTF-8 bytes
        b"P-1,low,Whisp \xff\xfe,w,2026-01-20\n",  # not UTF-8 at all
        b'"P-1,low,Whisp,w,2026-01-20\n',  # an open quote to the end of the file
        b"P-1,low,Whisp,w,2026-01-20," + b"x" * 200_000 + b"\n",
    ):
        r = client.post(
            "/v1/plots/screenings",
            content=csv_head + hostile,
            headers={**headers, "Content-Type": "text/csv"},
        )
        assert 400 <= r.status_code < 500 and r.json()["message"], (hostile[:40], r.text[:200])
    assert _count(conn, "plot_screenings") == before


def test_named_query_and_subscription_bodies(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    headers = tenant_a.auth("operator")
    query = {"name": "ships", "query": {"EQ_bizStep": ["shipping"], "eventType": ["ObjectEvent"],
                                        "GE_eventTime": "2024-01-01T00:00:00Z"}}  # fmt: skip
    assert _refused(client, "/epcis/queries", query, headers) == []
    assert client.post("/epcis/queries", json=query, headers=headers).status_code == 201
    before = _count(conn, "epcis_subscriptions")
    subscription = {"dest": "https://93.184.215.14/hook", "signatureToken": "t" * 32,
                    "reportIfEmpty": False, "stream": True}  # fmt: skip
    assert _refused(client, "/epcis/queries/ships/subscriptions", subscription, headers) == []
    assert _count(conn, "epcis_subscriptions") == before


def _nested_objects(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for _ in range(levels - 1):
        nested = {"a": nested}
    return nested


@pytest.mark.parametrize(
    "measurements",
    [{"note": NUL}, {SURROGATE: 1}, {"readings": [SURROGATE]}, _nested_objects(9)],
    ids=["nul", "surrogate-key", "surrogate-inside", "nine-levels"],
)
def test_a_steps_free_form_measurements_hold_only_storable_json(measurements: Any) -> None:
    body = {"step": "drying", "occurred_at": "2025-12-01T08:00:00+07:00",
            "inputs": [{"lot_id": "00000000-0000-4000-8000-000000000001", "kg": 1}],
            "outputs": [{"code": "D-1", "kind": "dried_cherry", "kg": 1}]}  # fmt: skip
    for fine in ({"moisture_pct": 11.5}, _nested_objects(8)):
        TransformationIn.model_validate({**body, "measurements": fine})
    with pytest.raises(ValidationError) as refused:
        TransformationIn.model_validate({**body, "measurements": measurements})
    assert refused.value.errors()[0]["loc"][0] == "measurements"


def test_external_lot_and_dds_reference_bodies(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    headers = tenant_a.auth("operator")
    before = _count(conn, "external_lots"), _count(conn, "lot_dds_references")
    declaration = {
        "code": "EXT-CO-1",
        "kg": 12.5,
        "origin_country": "CO",
        "producer": "Finca La Esperanza, Huila",
        "supplier": "Bremen Coffee Import",
        "documents": [{"type": "certificate_of_origin", "number": "CO-9", "sha256": "a" * 64}],
        "received_at": "2026-11-18T09:00:00+01:00",
    }
    assert _refused(client, "/v1/external-lots", declaration, headers) == []
    assert tenant_a.green is not None
    reference = {"reference_number": "25VNDE12345678", "verification_number": "KYBFRB6R",
                 "role": "received", "note": "from the exporter"}  # fmt: skip
    url = f"/v1/lots/{tenant_a.green['id']}/dds"
    assert _refused(client, url, reference, headers) == []
    assert (_count(conn, "external_lots"), _count(conn, "lot_dds_references")) == before
    # the valid bodies are taken: the refusals above were the mutations'
    made = client.post("/v1/external-lots", json=declaration, headers=headers)
    assert made.status_code == 201, made.text
    assert client.post(url, json=reference, headers=headers).status_code == 201
