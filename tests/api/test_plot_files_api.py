"""POST /v1/plots/import: a GeoJSON, KML or GPX file, as a multipart part or as the body,
registers or updates the cooperative's plots, or is refused with every refusal named."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.api.builders import Tenant
from tests.factories import square

LON, LAT = 108.05, 12.68


def collection(*features: dict) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def feature(geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def test_multipart_geojson(client: TestClient, tenant_a: Tenant) -> None:
    data = collection(
        feature(square(LON + 0.01, LAT, 0.03), PlotCode="P-API"),
        feature({"type": "Point", "coordinates": [LON, LAT]}, PlotCode="P-1", Area=0.9),
    )
    r = client.post(
        "/v1/plots/import",
        params={"farm": tenant_a.world.farm["code"]},
        files={"file": ("plots.geojson", data, "application/octet-stream")},
        headers=tenant_a.auth("operator"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 0)
    plots = client.get("/v1/plots", params={"limit": 50}, headers=tenant_a.auth("read-only"))
    by_code = {p["code"]: p for p in plots.json()["items"]}
    assert by_code["P-API"]["geometry"]["type"] == "Polygon"
    assert by_code["P-1"]["geometry"] == {"type": "Point", "coordinates": [LON, LAT]}
    assert by_code["P-1"]["area_ha"] == 0.9


def test_a_deeply_nested_file_is_a_422(client: TestClient, tenant_a: Tenant) -> None:
    for body in (
        b"[" * 5000 + b"]" * 5000,
        b'{"type": "Feature", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
    ):
        r = client.post(
            "/v1/plots/import",
            content=body,
            headers={**tenant_a.auth("operator"), "Content-Type": "application/geo+json"},
        )
        assert r.status_code == 422 and "not GeoJSON" in r.json()["message"], r.text


def test_raw_gpx_body(client: TestClient, tenant_a: Tenant) -> None:
    points = [(LON, LAT), (LON + 0.001, LAT), (LON + 0.001, LAT + 0.001), (LON, LAT + 0.001)]
    pts = "".join(f'<trkpt lat="{lat}" lon="{lon}"/>' for lon, lat in points)
    gpx = (
        '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        f'<trk><name>P-WALK</name><trkseg>{pts}<trkpt lat="{LAT + 0.0001}" lon="{LON}"/>'
        "</trkseg></trk></gpx>"
    )
    r = client.post(
        "/v1/plots/import",
        params={"farm": tenant_a.world.farm["code"]},
        content=gpx.encode(),
        headers={**tenant_a.auth("operator"), "Content-Type": "application/gpx+xml"},
    )
    assert r.status_code == 200, r.text
    (plot,) = r.json()["plots"]
    assert plot["source"] == "GPS walk (GPX track)" and plot["export_kind"] == "Point"


def test_refusals_are_422_naming_feature_and_rule(client: TestClient, tenant_a: Tenant) -> None:
    data = collection(
        feature({"type": "Point", "coordinates": [LON, LAT]}, PlotCode="P-X", Area="2"),
        feature({"type": "Point", "coordinates": [LON, LAT]}, PlotCode="P-Y", Area=5),
    )
    r = client.post(
        "/v1/plots/import",
        params={"farm": tenant_a.world.farm["code"]},
        content=data,
        headers={**tenant_a.auth("operator"), "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "rule_violation" and body["details"]["rule"] == "plot_file"
    assert [(x["feature"], x["rule"]) for x in body["details"]["refusals"]] == [
        ("feature 1 (P-X)", "area_not_a_number"),
        ("feature 2 (P-Y)", "polygon_required"),
    ]
    assert "feature 1 (P-X): area_not_a_number" in body["message"]


def test_statuses(client: TestClient, tenant_a: Tenant, tenant_b: Tenant) -> None:
    data = collection(feature(square(LON, LAT), PlotCode="P-Z", Area=1))
    geo = {"Content-Type": "application/geo+json"}
    assert client.post("/v1/plots/import", content=data, headers=geo).status_code == 401
    read_only = client.post(
        "/v1/plots/import", content=data, headers={**tenant_a.auth("read-only"), **geo}
    )
    assert read_only.status_code == 403
    # another cooperative's farm is not found, by the query or in the file
    foreign = client.post(
        "/v1/plots/import",
        params={"farm": tenant_b.world.farm["code"]},
        content=data,
        headers={**tenant_a.auth("operator"), **geo},
    )
    assert foreign.status_code == 404
    in_file = client.post(
        "/v1/plots/import",
        content=collection(
            feature(square(LON, LAT), PlotCode="P-Z", Area=1, FarmCode=tenant_b.world.farm["code"])
        ),
        headers={**tenant_a.auth("operator"), **geo},
    )
    assert in_file.status_code == 422
    assert in_file.json()["details"]["refusals"][0]["rule"] == "farm_unknown"
    not_a_file = client.post(
        "/v1/plots/import",
        content=b"%PDF-1.7",
        headers={**tenant_a.auth("operator"), "Content-Type": "application/pdf"},
    )
    assert not_a_file.status_code == 422 and not_a_file.json()["details"]["field"] == "file"
    no_part = client.post(
        "/v1/plots/import",
        files={"other": ("x.geojson", data, "application/geo+json")},
        headers=tenant_a.auth("operator"),
    )
    assert no_part.status_code == 422 and no_part.json()["details"]["field"] == "file"
    two = client.post(
        "/v1/plots/import",
        files=[
            ("file", ("a.geojson", data, "application/geo+json")),
            ("file", ("b.geojson", data, "application/geo+json")),
        ],
        headers=tenant_a.auth("operator"),
    )
    assert two.status_code == 422 and two.json()["details"]["field"] == "file"
