"""The served OpenAPI of /epcis is a subset of GS1's openapi.yaml of the EPCIS 2.0 REST
bindings: every path and method it serves is one of GS1's, with parameters GS1 defines
for that operation (name and place) and response codes GS1 lists for it, but for the
400s GS1's description leaves out (written down below, with why)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from coffeetrace.trace import epcis_query
from tests.conftest import SHARED

GS1_OPENAPI = SHARED / "reference" / "epcis" / "rest" / "openapi.yaml"
PREFIX = "/epcis"
# Operations whose parameters GS1 says "SHALL raise a QueryParameterException" (or that
# take perPage and nextPageToken, which can be wrong) but whose responses GS1 lists
# without a 400; we declare the 400 we answer.
# POST /queries and POST /queries/{queryName}/subscriptions refuse an invalid query or
# subscription body with the bindings' ValidationException, which GS1 lists for neither.
GS1_OMITS_400 = {
    ("get", "/events"),
    ("get", "/capture"),
    ("get", "/queries"),
    ("post", "/queries"),
    ("post", "/queries/{queryName}/subscriptions"),
}


@pytest.fixture(scope="module")
def gs1() -> dict[str, Any]:
    if not GS1_OPENAPI.exists():
        pytest.skip(f"GS1's openapi.yaml is not at {GS1_OPENAPI}")
    spec: dict[str, Any] = yaml.safe_load(GS1_OPENAPI.read_text())
    return spec


@pytest.fixture
def ours(app: FastAPI) -> dict[str, Any]:
    paths = app.openapi()["paths"]
    return {p[len(PREFIX) :]: ops for p, ops in paths.items() if p.startswith(PREFIX + "/")}


def _resolve(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        node: Any = spec
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def _key(parameter: dict[str, Any]) -> tuple[str, str]:
    name = parameter["name"]
    return parameter["in"], name.lower() if parameter["in"] == "header" else name


def _gs1_parameters(spec: dict[str, Any], path: str, method: str) -> set[tuple[str, str]]:
    item = spec["paths"][path]
    params = [*item.get("parameters", []), *item[method].get("parameters", [])]
    return {_key(_resolve(spec, p)) for p in params}


def test_every_served_epcis_operation_is_one_of_gs1s(
    gs1: dict[str, Any], ours: dict[str, Any]
) -> None:
    assert ours, "no /epcis path served"
    for path, operations in ours.items():
        assert path in gs1["paths"], f"{PREFIX}{path} is not a path of GS1's bindings"
        for method, operation in operations.items():
            assert method in gs1["paths"][path], f"{method.upper()} {PREFIX}{path}: not GS1's"
            served = {_key(p) for p in operation.get("parameters", [])}
            allowed = _gs1_parameters(gs1, path, method)
            assert served <= allowed, (
                f"{method.upper()} {PREFIX}{path}: parameters GS1 does not define there: "
                f"{sorted(served - allowed)}"
            )
            path_params = {p for p in allowed if p[0] == "path"}
            assert {p for p in served if p[0] == "path"} == path_params
            codes = set(operation["responses"])
            gs1_codes = set(gs1["paths"][path][method]["responses"])
            if (method, path) in GS1_OMITS_400:
                gs1_codes.add("400")
            assert codes <= gs1_codes, (
                f"{method.upper()} {PREFIX}{path}: response codes GS1 does not list: "
                f"{sorted(codes - gs1_codes)}"
            )
            assert "422" not in codes


def test_the_implemented_operations(ours: dict[str, Any]) -> None:
    implemented = {(m, p) for p, ops in ours.items() for m in ops}
    assert implemented == {
        ("post", "/capture"),
        ("get", "/capture"),
        ("get", "/capture/{captureID}"),
        ("get", "/events"),
        ("get", "/events/{eventID}"),
        ("get", "/eventTypes"),
        ("get", "/eventTypes/{eventType}/events"),
        ("get", "/epcs/{epc}/events"),
        ("get", "/bizSteps/{bizStep}/events"),
        ("get", "/bizLocations/{bizLocation}/events"),
        ("get", "/readPoints/{readPoint}/events"),
        ("get", "/dispositions/{disposition}/events"),
        ("post", "/queries"),
        ("get", "/queries"),
        ("get", "/queries/{queryName}"),
        ("delete", "/queries/{queryName}"),
        ("get", "/queries/{queryName}/events"),
        ("post", "/queries/{queryName}/subscriptions"),
        ("get", "/queries/{queryName}/subscriptions"),
        ("get", "/queries/{queryName}/subscriptions/{subscriptionID}"),
        ("delete", "/queries/{queryName}/subscriptions/{subscriptionID}"),
    }


def test_events_declares_every_parameter_it_takes(
    gs1: dict[str, Any], ours: dict[str, Any]
) -> None:
    served = {p["name"] for p in ours["/events"]["get"]["parameters"]}
    assert served == set(epcis_query.PARAMETERS)
    required = {
        "eventType", "GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime",
        "EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_readPoint", "EQ_bizLocation",
        "MATCH_epc", "MATCH_anyEPC", "MATCH_epcClass", "MATCH_anyEPCClass", "MATCH_parentID",
        "MATCH_inputEPC", "MATCH_outputEPC", "EQ_eventID", "EQ_transformationID", "orderBy",
        "orderDirection", "eventCountLimit", "perPage", "nextPageToken",
    }  # fmt: skip
    assert required <= served
    # the list parameters pipe-delimited, as GS1 writes them
    gs1_forms = {
        p["name"]: p
        for p in (_resolve(gs1, x) for x in gs1["paths"]["/events"]["get"]["parameters"])
    }
    for parameter in ours["/events"]["get"]["parameters"]:
        gs1_form = gs1_forms[parameter["name"]]
        assert parameter.get("style") == gs1_form.get("style"), parameter["name"]
        gs1_schema = _resolve(gs1, gs1_form["schema"])
        assert parameter["schema"].get("type") == gs1_schema.get("type"), parameter["name"]
