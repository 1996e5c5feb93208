"""Rate limits of the public endpoints: lot codes are not enumerable through the resolver,
a cached page is never refused, and each client address has its own bucket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.api.ratelimit import ClientLimiter
from coffeetrace.settings import Settings
from tests.api.builders import GTIN, Tenant
from tests.api.server import serve

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en"}
JSON = {"Accept": "application/json"}
LIMITS = {
    "page_cache_recheck_s": 0.0,
    "public_lookups_per_minute": 6.0,  # one token per 10 s: nothing refills during a test
    "public_lookups_burst": 10,
    "public_miss_cost": 5.0,
}


def test_guessing_lot_codes_is_refused_with_429(settings: Settings, tenant_a: Tenant) -> None:
    app = create_app(settings.model_copy(update=LIMITS))
    real = f"/01/{GTIN}/10/{tenant_a.green['code']}"
    with TestClient(app) as client:
        assert client.get(real, headers=BROWSER).status_code == 200  # remembered, cached
        statuses = [
            client.get(f"/01/{GTIN}/10/G-{n:04d}", headers=JSON).status_code for n in range(50)
        ]
        # a miss costs 5 of the 10 tokens left after the real scan and its render
        assert statuses[:1] == [404]
        assert statuses.count(404) <= 2 and statuses[-1] == 429
        refused = client.get(f"/01/{GTIN}/10/G-9999", headers=JSON)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        assert body["error"] == "rate_limited" and "try again" in body["message"]
        assert body["details"]["retry_after_s"] == int(refused.headers["retry-after"])
        page = client.get(f"/01/{GTIN}/10/G-9998", headers=BROWSER)
        assert page.status_code == 429 and "<html" in page.text
        assert "Too many codes" in page.text and page.headers["retry-after"]
        # the real lot's QR code keeps working: the link is remembered and the page cached
        for _ in range(20):
            again = client.get(real, headers=BROWSER)
            assert again.status_code == 200 and tenant_a.green["code"] in again.text
        # so do other cached pages; an unknown public id is a lookup, refused now
        lot = f"/l/{tenant_a.green['public_id']}?lang=en"
        assert client.get(lot, headers=BROWSER).status_code == 200
        assert client.get("/l/abcdefghijklmnopqrstuvwxyz", headers=JSON).status_code == 429


def test_verify_is_limited(settings: Settings, tenant_a: Tenant) -> None:
    url = f"/l/{tenant_a.green['public_id']}/verify"
    # a verification is cached by the lot's chain head like its page: repeating it is free
    with TestClient(create_app(settings.model_copy(update=LIMITS))) as client:
        statuses = [client.get(url).status_code for _ in range(12)]
    assert statuses == [200] * 12
    # each verification that is run costs a lookup (here none is kept)
    uncached = {**LIMITS, "page_cache_entries": 0}
    with TestClient(create_app(settings.model_copy(update=uncached))) as client:
        statuses = [client.get(url).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]


def _get(url: str, forwarded_for: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={**JSON, "X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_each_client_address_has_its_own_bucket(settings: Settings, tenant_a: Tenant) -> None:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (its default --forwarded-allow-ips),
    # so each forwarded address is a client of its own, as behind a reverse proxy
    with serve(settings.model_copy(update=LIMITS)) as base:
        guesses = [_get(f"{base}/01/{GTIN}/10/X-{n}", "203.0.113.7")[0] for n in range(6)]
        assert guesses[0] == 404 and guesses[-1] == 429
        status, body = _get(f"{base}/01/{GTIN}/10/X-9", "203.0.113.7")
        assert status == 429 and body["error"] == "rate_limited"
        other, _ = _get(f"{base}/01/{GTIN}/10/{tenant_a.green['code']}", "198.51.100.20")
        assert other == 200


def test_bucket_state_is_bounded_and_refills() -> None:
    limiter = ClientLimiter(per_minute=60, burst=2, miss_cost=5, max_clients=100)
    for n in range(1000):
        assert limiter.take(f"10.0.{n // 256}.{n % 256}", now=0.0) == 0.0
    assert len(limiter) == 100
    assert limiter.take("a", now=0.0) == 0.0 and limiter.take("a", now=0.0) == 0.0
    assert limiter.take("a", now=0.0) == 1.0  # one token a second
    assert limiter.take("a", now=1.0) == 0.0  # refilled
    limiter.charge("a", 4.0, now=1.0)  # a miss: debt, bounded by one burst
    assert limiter.take("a", now=1.0) == 3.0
    assert ClientLimiter(per_minute=0, burst=1, miss_cost=5).take("a", 100) == 0.0
