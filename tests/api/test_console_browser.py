"""A clerk's round in the console, in Debian's Chromium at a phone's size (360 x 740) with
JavaScript off (plain forms): log in, build a cherry lot from the harvests selected, dry
it (refused by mass balance, then corrected), and download the labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest

from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import add_harvests, make_tenant
from tests.api.console_helpers import PASSWORD, make_user
from tests.api.server import serve
from tests.api.test_browser import ARTIFACTS, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


def test_clerk_round_on_a_phone(
    browser,  # type: ignore[no-untyped-def]  # noqa: F811
    settings: Settings,
    conn: psycopg.Connection,
    keys: KeyRing,
) -> None:
    tenant = make_tenant(conn, keys=keys, trees=6)
    add_harvests(conn, tenant.world, start=datetime.now(UTC) - timedelta(minutes=30), keys=keys)
    conn.commit()
    clerk = make_user(conn, tenant, "operator", settings, name="clerk")
    with serve(settings) as base:
        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            locale="vi-VN",
            is_mobile=True,
            has_touch=True,
            java_script_enabled=False,
            accept_downloads=True,
        )
        page = context.new_page()
        hosts: set[str] = set()
        page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
        page.goto(f"{base}/console/")
        assert "/console/login" in page.url
        page.fill("#cooperative", tenant.world.coop["code"])
        page.fill("#username", clerk)
        page.fill("#password", PASSWORD)
        page.click("#login")
        assert page.url == f"{base}/console/"
        assert page.locator("#season-kg").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-today-vi.png"), full_page=True)

        page.goto(f"{base}/console/harvests?unassigned=1")
        boxes = page.locator("input[name=harvest_id]")
        assert boxes.count() == 6
        for i in range(boxes.count()):
            boxes.nth(i).check()
        page.fill("#code", "C-PHONE-1")
        page.click("#build")
        assert "/console/lots/" in page.url
        assert page.locator("h1").inner_text() == "Lô C-PHONE-1"
        kg = float(page.locator("#s-in").input_value())
        page.fill("#s-when", datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#s-code", "D-PHONE-1")
        page.fill("#s-out", f"{kg * 0.8:.3f}".replace(".", ","))
        page.click("#save-step")
        error = page.locator("#step-error")
        assert error.is_visible() and "vượt quá tỷ lệ tối đa" in error.inner_text()
        page.fill("#s-out", f"{kg * 0.5:.3f}".replace(".", ","))
        page.click("#save-step")
        assert page.locator("h1").inner_text() == "Lô D-PHONE-1"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(ARTIFACTS / "console-lot-vi.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#labels-link")
        assert download.value.path().read_bytes().startswith(b"%PDF")
        context.close()
    assert hosts == {urlsplit(base).netloc}, hosts
