"""The printed lot URL /l/{id} announces its links as the GS1 Digital Link does."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from coffeetrace.api import resolver
from tests.api.builders import GTIN, Tenant

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def links(header: str) -> dict[str, str]:
    """rel -> target of a Link header."""
    return {rel: target for target, rel in re.findall(r'<([^>]+)>;\s*rel="([^"]+)"', header)}


def test_lot_url_has_the_digital_links_link_header(client: TestClient, tenant_a: Tenant) -> None:
    lot = tenant_a.green
    digital = client.get(f"/01/{GTIN}/10/{lot['code']}", headers=BROWSER).headers["link"]
    for headers in (BROWSER, JSON):
        r = client.get(f"/l/{lot['public_id']}", headers=headers)
        assert r.status_code == 200
        assert r.headers["link"] == digital  # anchored at the lot's Digital Link
        # a revalidation answers with it too
        again = client.get(
            f"/l/{lot['public_id']}", headers=headers | {"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304 and again.headers["link"] == digital


def test_lot_without_gtin_links_to_a_linkset_it_serves(
    client: TestClient, tenant_a: Tenant
) -> None:
    lot = tenant_a.cherry  # no product, so no GTIN and no Digital Link: /l/{id} is printed
    page = f"http://testserver/l/{lot['public_id']}"
    for headers in (BROWSER, JSON):
        found = links(client.get(f"/l/{lot['public_id']}", headers=headers).headers["link"])
        assert found["linkset"] == f"{page}?linkType=linkset"
        assert found[resolver.GS1_VOC + "defaultLink"] == page
        assert found[resolver.GS1_VOC + "epcis"] == f"{page}/epcis"
    r = client.get(f"/l/{lot['public_id']}", params={"linkType": "linkset"})
    assert r.status_code == 200 and r.headers["content-type"] == resolver.LINKSET_TYPE
    assert r.json() == resolver.linkset(page, "http://testserver", lot["public_id"])
    assert links(r.headers["link"])["linkset"] == f"{page}?linkType=linkset"
    assert client.get(f"/l/{lot['public_id']}/epcis").status_code == 200


def test_linkset_of_an_unknown_lot_is_not_found(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get("/l/abcdefghijklmnopqrstuvwxyz", params={"linkType": "linkset"}, headers=JSON)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
