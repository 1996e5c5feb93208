"""The provenance page in a real headless Chromium at a phone's size (360 x 740)."""

from __future__ import annotations

import io
import os
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import zxingcpp
from PIL import Image

from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import GTIN, make_tenant
from tests.api.server import serve

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("COFFEETRACE_REQUIRE_BROWSER"):
            pytest.fail(f"COFFEETRACE_REQUIRE_BROWSER is set but {CHROMIUM} is missing")
        pytest.skip(
            "Debian's chromium is not installed (apt-get install -y chromium); "
            "the browser test needs it"
        )
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_page_on_a_phone(
    browser,
    settings: Settings,
    conn: psycopg.Connection,  # type: ignore[no-untyped-def]
    lang: str,
    keys: KeyRing,
) -> None:
    tenant = make_tenant(conn, keys=keys, trees=40)
    with serve(settings) as base:
        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            locale="vi-VN" if lang == "vi" else "en-US",
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        page = context.new_page()
        errors: list[str] = []
        hosts: set[str] = set()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
        # the URL a printed label carries, read by an ordinary QR reader, opened as a phone would
        request = urllib.request.Request(
            f"{base}/v1/lots/{tenant.green['id']}/qr.png", headers=tenant.auth("read-only")
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            png = answer.read()
        scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))[0].text
        assert scanned == f"{base}/01/{GTIN}/10/{tenant.green['code']}"
        response = page.goto(scanned)
        assert response is not None and response.status == 200
        page.wait_for_load_state("load")
        title = page.locator("#lot-title")
        assert title.is_visible() and tenant.green["code"] in title.inner_text()
        assert page.locator("#tree-count").is_visible()
        assert ("40 cây cà phê" if lang == "vi" else "40 coffee trees") in page.locator(
            "#tree-count"
        ).inner_text()
        assert page.locator("svg.map").is_visible()
        assert page.locator("#verification").is_visible()
        assert page.locator("svg.chart").count() == 3
        # readable at 360 px: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"provenance-page-{lang}.png"), full_page=True)
        # the visible switch leads to the other language
        page.locator("a.lang").click()
        page.wait_for_load_state("load")
        other = "en" if lang == "vi" else "vi"
        assert page.evaluate("document.documentElement.lang") == other
        # a tree tag link from the page
        page.goto(f"{base}/t/{tenant.world.trees[0]['public_id']}")
        assert page.locator("#tree-title").is_visible()
        context.close()
        # and the page needs no JavaScript at all
        plain = browser.new_context(
            viewport={"width": 360, "height": 740}, java_script_enabled=False
        )
        no_js = plain.new_page()
        no_js.goto(scanned)
        assert no_js.locator("#tree-count").is_visible()
        assert no_js.locator("svg.map").is_visible()
        plain.close()
    assert errors == []
    assert hosts == {urlsplit(base).netloc}, hosts
