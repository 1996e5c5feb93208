"""The lot page states the geolocation the EUDR export holds for the lot's plots."""

from __future__ import annotations

from collections import Counter

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.trace import eudr
from tests.api.builders import Tenant

BROWSER = {"Accept": "text/html"}


def test_page_says_what_the_export_holds(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    # the tenant's one plot is a 1-ha polygon: the export holds it as a point with its area
    exported = eudr.export_eudr(conn, tenant_a.green["id"])
    kinds = Counter(f["geometry"]["type"] for f in exported["features"])
    assert kinds == {"Point": 1}
    url = f"/l/{tenant_a.green['public_id']}"
    en = client.get(url, params={"lang": "en"}, headers=BROWSER).text
    assert "1 of 1 plots geolocated: 1 as points with area (up to 4 ha), 0 as polygons." in en
    assert "as polygons)" not in en
    vi = client.get(url, params={"lang": "vi"}, headers=BROWSER).text
    assert "1 lô theo điểm kèm diện tích (đến 4 ha), 0 lô theo đa giác" in vi
