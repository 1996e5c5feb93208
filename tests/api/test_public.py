"""Public pages and the Digital Link resolver: content, languages, caching, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.trace import processing
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import GTIN, Tenant

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def dl(tenant: Tenant) -> str:
    return f"/01/{GTIN}/10/{tenant.green['code']}"


def test_lot_page_tells_the_story(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(f"/l/{tenant_a.green['public_id']}", headers=BROWSER | {"Accept-Language": "en"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert len(r.content) < 60_000
    assert tenant_a.green["code"] in html and "Robusta Ea Tu green" in html
    assert "5 coffee trees" in html and "TR4" in html
    assert "<svg" in html and 'class="map"' in html  # origin map
    assert html.count('class="chart"') == 3  # rain, soil moisture, temperature
    assert "Drying" in html and "Hulling" in html and "moisture 12.5 %" in html
    assert "4C" in html  # certificate evidence
    assert "1 of 1 plots geolocated" in html
    assert f"/l/{tenant_a.green['public_id']}/verify" in html
    assert "Farm Ea Tu" in html  # consented display name
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//(?!example\.org)', html)  # no external loads
    assert r.headers["content-language"] == "en"


def test_languages(client: TestClient, tenant_a: Tenant) -> None:
    url = f"/l/{tenant_a.green['public_id']}"
    vi = client.get(url, headers=BROWSER | {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert "cây cà phê" in vi.text and 'lang="vi"' in vi.text and "?lang=en" in vi.text
    assert "độ ẩm 12,5 %" in vi.text  # measurements speak the reader's language too
    en = client.get(url, headers=BROWSER | {"Accept-Language": "en-US,en;q=0.9,vi;q=0.3"})
    assert "coffee trees" in en.text and 'lang="en"' in en.text and "?lang=vi" in en.text
    switched = client.get(url + "?lang=vi", headers=BROWSER | {"Accept-Language": "en"})
    assert 'lang="vi"' in switched.text
    assert "Accept-Language" in vi.headers["vary"]


def test_etag_cache_control_and_invalidation(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, keys: KeyRing
) -> None:
    url = f"/l/{tenant_a.green['public_id']}?lang=en"
    first = client.get(url, headers=BROWSER)
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = client.get(url, headers=BROWSER | {"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get(url, headers=BROWSER).headers["etag"] == etag
    # a new chain event about the lot (it is graded) changes the page's chain head
    processing.record_transformation(
        conn,
        tenant_a.coop_id,
        step="grading",
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        inputs=[(tenant_a.green["id"], 1)],
        outputs=[{"code": "GR-1", "kg": 1, "kind": "green"}],
        keys=keys,
    )
    conn.commit()
    changed = client.get(url, headers=BROWSER | {"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_provenance_json_by_accept(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(f"/l/{tenant_a.green['public_id']}", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["document"]["lot"]["code"] == tenant_a.green["code"]
    assert body["signature"]["algorithm"] == "Ed25519"


def test_verify_json(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(f"/l/{tenant_a.green['public_id']}/verify")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["signature"]["valid"] is True
    assert body["chain"]["ok"] is True and body["chain"]["checked_events"] >= 3
    assert body["public_keys"] == "/.well-known/coffeetrace-keys"
    listed = client.get(body["public_keys"]).json()
    assert listed["algorithm"] == "Ed25519"
    mine = next(c for c in listed["cooperatives"] if c["id"] == str(tenant_a.coop_id))
    assert body["signature"]["key_id"] in {k["key_id"] for k in mine["keys"]}
    assert body["document"]["lot"]["public_id"] == tenant_a.green["public_id"]
    assert body["checkpoint"]["body"]["cooperative_id"] == str(tenant_a.coop_id)
    assert {e["seq"] for e in body["inclusion"]} == {
        e["seq"] for e in body["document"]["chain"]["events"]
    }


def test_digital_link_resolver(client: TestClient, tenant_a: Tenant) -> None:
    page = client.get(dl(tenant_a), headers=BROWSER | {"Accept-Language": "en"})
    assert page.status_code == 200 and tenant_a.green["code"] in page.text
    assert 'rel="linkset"' in page.headers["link"]
    data = client.get(dl(tenant_a), headers={"Accept": "application/json"})
    assert data.json()["document"]["lot"]["public_id"] == tenant_a.green["public_id"]
    epcis = client.get(dl(tenant_a), params={"linkType": "gs1:epcis"}, follow_redirects=False)
    assert epcis.status_code == 307 and "gs1.org/voc/epcis" in epcis.headers["link"]
    assert epcis.headers["location"] == f"/l/{tenant_a.green['public_id']}/epcis"
    doc = client.get(epcis.headers["location"]).json()
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    linkset = client.get(dl(tenant_a), params={"linkType": "linkset"})
    assert linkset.headers["content-type"] == "application/linkset+json"
    entry = linkset.json()["linkset"][0]
    assert entry["anchor"].endswith(dl(tenant_a))
    assert entry["https://gs1.org/voc/pip"][0]["href"].endswith(f"/l/{tenant_a.green['public_id']}")
    assert "https://gs1.org/voc/epcis" in entry and "https://gs1.org/voc/defaultLink" in entry
    # GTIN-13 form of the same GTIN resolves the same lot
    short = client.get(f"/01/{GTIN[1:]}/10/{tenant_a.green['code']}", headers=BROWSER)
    assert short.status_code == 200 and tenant_a.green["code"] in short.text


def test_resolver_errors(client: TestClient, tenant_a: Tenant) -> None:
    wrong = GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10)
    r = client.get(
        f"/01/{wrong}/10/{tenant_a.green['code']}", headers={"Accept": "application/json"}
    )
    assert r.status_code == 400 and "check digit" in r.json()["message"]
    page = client.get(f"/01/{wrong}/10/{tenant_a.green['code']}", headers=BROWSER)
    assert page.status_code == 400 and "check digit" in page.text and "<html" in page.text
    unknown = client.get(f"/01/{GTIN}/10/NO-SUCH-LOT", headers=BROWSER | {"Accept-Language": "en"})
    assert unknown.status_code == 404 and "could not find this coffee" in unknown.text
    assert client.get("/l/abcdefghijklmnopqrstuvwxyz", headers=BROWSER).status_code == 404
    api_404 = client.get("/l/abcdefghijklmnopqrstuvwxyz", headers={"Accept": "application/json"})
    assert api_404.json()["error"] == "not_found"


def test_tree_page(client: TestClient, tenant_a: Tenant) -> None:
    tree = tenant_a.world.trees[0]
    r = client.get(f"/t/{tree['public_id']}", headers=BROWSER | {"Accept-Language": "en"})
    assert r.status_code == 200
    html = r.text
    assert tree["tag_code"] in html and "TR4" in html and "P-1" in html
    assert "2025/26" in html  # harvest season of November 2025
    assert tenant_a.cherry["code"] in html and tenant_a.green["code"] in html
    assert f"/l/{tenant_a.green['public_id']}" in html


def test_public_ids_are_random_128_bit(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ids = [
        r["public_id"]
        for r in conn.execute(
            "select public_id from lots union all select public_id from trees"
        ).fetchall()
    ]
    assert len(ids) == len(set(ids)) >= 16
    for public_id in ids:
        assert re.fullmatch(r"[a-z2-7]{26}", public_id)  # 130 bits of base32 carry 128 random
    # neighbours of a real id are not pages
    real = tenant_a.green["public_id"]
    neighbour = real[:-1] + ("a" if real[-1] != "a" else "b")
    assert client.get(f"/l/{neighbour}", headers=BROWSER).status_code == 404


def test_badge_reports_a_tampered_record(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    url = f"/l/{tenant_a.green['public_id']}?lang=en"
    # someone edits the stored quantity behind the chain's back
    conn.execute(
        "update lots set quantity_kg = quantity_kg + 100 where id = %s", (tenant_a.green["id"],)
    )
    conn.commit()
    page = client.get(url, headers=BROWSER).text
    assert "Verification failed" in page and "tamper-evident chain and signed" not in page
    assert client.get(f"/l/{tenant_a.green['public_id']}/verify").json()["ok"] is False


def test_badge_on_an_intact_lot(client: TestClient, tenant_a: Tenant) -> None:
    page = client.get(f"/l/{tenant_a.green['public_id']}?lang=en", headers=BROWSER).text
    assert "tamper-evident chain and signed" in page and "Verification failed" not in page


def test_page_of_a_thousand_tree_lot_stays_small(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    from tests.api.builders import make_tenant

    big = make_tenant(conn, keys=keys, trees=1000)
    r = client.get(f"/l/{big.green['public_id']}?lang=vi", headers=BROWSER)
    assert r.status_code == 200 and "1.000 cây cà phê" in r.text  # vi groups with "."
    assert r.text.count("h0") >= 1000  # every tree is a dot on the map
    assert len(r.content) < 60_000, len(r.content)
