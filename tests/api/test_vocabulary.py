"""The ct: vocabulary answers at its namespace ({public_base_url}/voc/) and defines every
ct: term the EPCIS exports use, with the type the exports give the term's values."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace import processing, vocabulary
from coffeetrace.trace.keys import KeyRing
from tests.trace.builders import T0
from tests.trace.chain import build_chain

BASE = "http://testserver"  # the tests' settings.public_base_url
VOC = f"{BASE}/voc/"
LOCALES = Path(__file__).resolve().parents[2] / "api" / "locales"


def ct_terms(node: Any) -> set[str]:
    """Local names of the ct: terms a document uses: its ct: keys, and the IRIs in the
    ct: namespace among its values (business steps, the sensor processing method)."""
    if isinstance(node, dict):
        found = {k.removeprefix("ct:") for k in node if k.startswith("ct:")}
        return found.union(*(ct_terms(v) for k, v in node.items() if k != "@context"))
    if isinstance(node, list):
        return set().union(*(ct_terms(v) for v in node))
    if isinstance(node, str) and node.startswith(VOC):
        return {node.removeprefix(VOC)}
    return set()


def values_of(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        here = [node[key]] if key in node else []
        return here + [x for v in node.values() for x in values_of(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in values_of(v, key)]
    return []


def exported_documents(client: TestClient, conn: psycopg.Connection, keys: KeyRing) -> list[Any]:
    """The EPCIS documents of the done-when chain's packed lot (with sensor summaries)
    and of a lot sorted from its second grade, with a measurement of no known term and
    kilograms recorded as text."""
    built = build_chain(conn, keys=keys)
    conn.execute(
        "insert into sensor_readings (time, device_id, plot_id, metric, value) values"
        " ('2026-06-01 10:00+00', 'soil', %(p)s, 'soilMoistureVwc', 30),"
        " ('2026-06-02 11:00+00', 'soil', %(p)s, 'precipitation', 4.5)",
        {"p": built["world"].plot["id"]},
    )
    (sorted_lot,) = processing.record_transformation(
        conn,
        built["world"].coop["id"],
        step="sorting",
        occurred_at=T0 + timedelta(days=14),
        inputs=[(built["grade_b"]["id"], 2)],
        outputs=[{"code": "SO-1", "kg": 1.9, "kind": "green"}],
        measurements={"black_broken_pct": "2.1", "husk_kg": "0.1", "sorter_model": "X-9"},
        keys=keys,
    )["outputs"]
    conn.commit()
    docs = []
    for lot in (built["packed"], sorted_lot):
        r = client.get(f"/l/{lot['public_id']}/epcis")
        assert r.status_code == 200, r.text
        docs.append(r.json())
    return docs


def test_every_ct_term_of_the_exports_is_defined_by_the_served_vocabulary(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    docs = exported_documents(client, conn, keys)
    used = set().union(*(ct_terms(d) for d in docs))
    # the check reads real documents: harvest master data, steps, measurements (known and
    # unknown), packing, sensor summaries, business steps and the signed evidence
    assert {
        "treePublicId",
        "harvestCherryKg",
        "step",
        "evidence",
        "moisture_pct",
        "cupping_score",
        "roast_level",
        "husk_kg",
        "otherMeasurement",
        "name",
        "value",
        "packedKg",
        "metric",
        "readings",
        "daily-summary",
        "bizstep/drying",
        "bizstep/sorting",
        "statementSignature",
    } <= used
    for doc in docs:
        assert {"ct": VOC} in doc["@context"]
    served = client.get("/voc/", headers={"Accept": "application/ld+json"})
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/ld+json")
    document = served.json()
    assert document["@context"]["ct"] == VOC  # the namespace the exports bind ct to
    defined = {n["@id"].removeprefix("ct:"): n for n in document["@graph"]}
    assert used - defined.keys() == set()
    for name in sorted(used):
        node = defined[name]
        assert node["rdfs:label"] and node["rdfs:comment"], name
        # the term's own IRI answers with the same definition
        one = client.get(VOC + name)
        assert one.status_code == 200, (name, one.text)
        assert {k: v for k, v in one.json().items() if k != "@context"} == node
        # and the exports give its values the type the vocabulary states
        for value in values_of(docs, f"ct:{name}"):
            if node.get("rdfs:range") == "xsd:decimal":
                assert type(value) in (int, float), (name, value)
            elif node.get("rdfs:range") == "xsd:integer":
                assert type(value) is int, (name, value)
            elif node.get("rdfs:range") == "xsd:string":
                assert type(value) is str, (name, value)
    # the measurement without a term is a name/value pair, not an undefined term
    assert {"ct:name": "sorter_model", "ct:value": "X-9"} in values_of(docs, "ct:otherMeasurement")[
        0
    ]
    assert values_of(docs, "ct:husk_kg") == [0.1]


def test_browsers_get_a_page_of_the_terms(client: TestClient) -> None:
    page = client.get("/voc/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Accept" in page.headers["vary"].split(", ")
    for term in vocabulary.terms():
        assert f'id="{term.name}"' in page.text and f"ct:{term.name}" in page.text
    one = client.get("/voc/husk_kg", headers={"Accept": "text/html"})
    assert one.status_code == 200 and "Husk removed at hulling" in one.text
    assert 'id="moisture_pct"' not in one.text
    # JSON-LD is the default answer
    plain = client.get("/voc/husk_kg")
    assert plain.headers["content-type"].startswith("application/ld+json")
    assert plain.json()["rdfs:range"] == "xsd:decimal"
    assert plain.json()["schema:unitCode"] == "KGM"


def test_an_unknown_term_is_not_found(client: TestClient) -> None:
    r = client.get("/voc/noSuchTerm")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and "noSuchTerm" in r.json()["message"]


def test_a_configured_step_has_its_business_step(settings: Settings) -> None:
    steps = {**settings.step_max_yield, "fermenting": 1.0}
    app = create_app(settings.model_copy(update={"step_max_yield": steps}))
    with TestClient(app) as client:
        r = client.get("/voc/bizstep/fermenting")
        assert r.status_code == 200 and r.json()["@type"] == "skos:Concept"
        # a step CBV names is CBV's, not ours
        assert client.get("/voc/bizstep/packing").status_code == 404


def test_every_measurement_the_pages_label_is_a_vocabulary_term() -> None:
    """The public pages and the exports speak of the same measurements."""
    for path in sorted(LOCALES.glob("*.json")):
        labelled = set(json.loads(path.read_text())["measures"])
        assert labelled - vocabulary.MEASUREMENT_TERMS.keys() == set(), path.name
