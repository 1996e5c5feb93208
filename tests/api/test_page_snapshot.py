"""The lot page rendered from what was written (migration 0061): the writer stores the
page's data with the signed statement, a page miss neither walks the genealogy nor signs,
a registry change makes the page be built again, the verify answer still checks the chain
and its result reaches the badge; pages carry CDN-friendly headers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api import pagedata, render
from coffeetrace.trace import genealogy, page_snapshots, registry_versions, verification
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant

BROWSER = {"Accept": "text/html", "Accept-Language": "en"}


def _snapshot(conn: psycopg.Connection, lot_id: Any) -> dict[str, Any] | None:
    return conn.execute(
        "select version, data, verification from lot_page_snapshots where lot_id = %s", (lot_id,)
    ).fetchone()


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("a page miss must not walk the genealogy, verify or sign")


def test_the_writer_stores_the_page_and_a_miss_only_reads_it(
    conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    green = tenant_a.green
    assert green is not None
    conn.commit()
    stored = _snapshot(conn, green["id"])
    assert stored is not None, "processing stored the green lot's page data"
    assert stored["data"]["trees"]["count"] == 5
    assert stored["data"]["signature"]["value"], "built from the signed statement"
    assert stored["verification"] is None  # not verified yet
    page_snapshots.record_verification(conn, keys, green["id"], {"ok": True, "checked_events": 9})
    for target, name in (
        (genealogy, "trace_backward"),
        (page_snapshots, "trace_backward"),
        (verification, "verify_lot"),
        (KeyRing, "sign"),
    ):
        monkeypatch.setattr(target, name, _refuse)
    data = pagedata.lot_page(conn, green["id"], keys, verify_max_age_s=3600)
    html = render.lot_html(data, "en", "/verify").decode()
    assert "5 coffee trees" in html and "TR4" in html
    assert data["verification"]["ok"] is True and data["verification"]["checked_events"] == 9
    assert set(data["conditions"]) == {"precipitation", "soilMoistureVwc", "temperature"}


def test_an_old_verification_is_run_again_and_kept(
    conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant
) -> None:
    green = tenant_a.green
    assert green is not None
    data = pagedata.lot_page(conn, green["id"], keys, verify_max_age_s=0)
    assert data["verification"]["ok"] is True and data["verification"]["checked_events"] > 0
    stored = _snapshot(conn, green["id"])
    assert stored is not None and stored["verification"]["ok"] is True


def test_a_registry_version_makes_the_page_be_built_again(
    conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant
) -> None:
    green, plot = tenant_a.green, tenant_a.world.plot
    assert green is not None
    before = _snapshot(conn, green["id"])
    assert before is not None
    conn.execute("update plots set area_ha = 2.75 where id = %s", (plot["id"],))
    registry_versions.record_versions(conn, keys, tenant_a.world.coop["id"], "plot", [plot["id"]])
    assert _snapshot(conn, green["id"]) is None, "the lot shows that plot: its page is dropped"
    data = pagedata.lot_page(conn, green["id"], keys)
    assert [p["area_ha"] for p in data["plots"]] == [2.75]  # the outline shown beside it
    after = _snapshot(conn, green["id"])
    assert after is not None and after["version"] != before["version"]


def test_verify_checks_the_chain_and_its_result_reaches_the_badge(
    conn: psycopg.Connection, client: TestClient, tenant_a: Tenant
) -> None:
    green = tenant_a.green
    assert green is not None
    conn.commit()
    page = client.get(f"/l/{green['public_id']}", headers=BROWSER)
    assert page.status_code == 200 and "Verification failed" not in page.text
    conn.execute("update harvest_events set cherry_kg = cherry_kg + 1")
    conn.commit()
    answer = client.get(f"/l/{green['public_id']}/verify").json()
    assert answer["ok"] is False
    stored = _snapshot(conn, green["id"])
    assert stored is not None and stored["verification"]["ok"] is False
    again = client.get(f"/l/{green['public_id']}", headers=BROWSER)
    assert "Verification failed" in again.text  # a new result is a new page version


def test_a_snapshot_edited_behind_the_applications_back_is_built_again(
    conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    green = tenant_a.green
    assert green is not None
    conn.execute("update harvest_events set cherry_kg = cherry_kg + 1")  # a real tamper
    failed = pagedata.lot_page(conn, green["id"], keys)
    assert failed["verification"]["ok"] is False
    farm = failed["farms"][0]["code"]
    # psql: the badge turned green, a farm renamed, the seal left as it was
    conn.execute(
        """update lot_page_snapshots
           set verification = jsonb_set(verification, '{ok}', 'true'),
               data = jsonb_set(data, '{farms,0,code}', '"Invented Estate"')
           where lot_id = %s""",
        (green["id"],),
    )
    before = _snapshot(conn, green["id"])
    assert before is not None and before["verification"]["ok"] is True
    with caplog.at_level("WARNING", logger="coffeetrace.trace.page_snapshots"):
        shown = pagedata.lot_page(conn, green["id"], keys)
    assert "page_snapshot_not_sealed" in caplog.text
    assert shown["verification"]["ok"] is False, "verified again, not the edited badge"
    assert shown["farms"][0]["code"] == farm != "Invented Estate"
    after = _snapshot(conn, green["id"])
    assert after is not None and after["version"] != before["version"]
    assert after["data"]["farms"][0]["code"] == farm and after["verification"]["ok"] is False


def test_pages_carry_an_etag_and_stale_while_revalidate(
    client: TestClient, tenant_a: Tenant, conn: psycopg.Connection
) -> None:
    assert tenant_a.green is not None
    conn.commit()
    url = f"/l/{tenant_a.green['public_id']}"
    first = client.get(url, headers=BROWSER)
    control = first.headers["cache-control"]
    assert "public" in control and "max-age=60" in control
    assert "stale-while-revalidate=300" in control
    again = client.get(url, headers=BROWSER | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    zipped = client.get(url, headers=BROWSER | {"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"].startswith("W/")
    assert int(zipped.headers["content-length"]) < len(first.content) / 2
