"""The public pages in the reader's language: numbers and dates as its locale writes
them, and free text a cooperative gave in both languages (or in one, marked)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api import i18n, render, svg
from coffeetrace.trace import lots, processing, registry_versions, verification
from coffeetrace.trace.keys import KeyRing
from tests import sealing
from tests.api.builders import Tenant, add_harvests, make_tenant

BROWSER = {"Accept": "text/html"}
HARVEST_DAY = datetime(2025, 11, 10, 7, 0, tzinfo=UTC)


@pytest.fixture
def big(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    """A cooperative whose five trees gave over a tonne each (1001, 1002, 1000, 1001 and
    1002 kg), all in one cherry lot of 5006 kg."""
    tenant = make_tenant(conn, keys=keys, with_lots=False)
    add_harvests(conn, tenant.world, start=HARVEST_DAY, kg=1000.0, keys=keys)
    tenant.cherry = lots.build_cherry_lot(
        conn,
        tenant.coop_id,
        code=f"C-{uuid.uuid4().hex[:6]}",
        plot_ids=[tenant.world.plot["id"]],
        keys=keys,
    )
    conn.commit()
    return tenant


def page(client: TestClient, url: str, lang: str) -> str:
    r = client.get(url, params={"lang": lang}, headers=BROWSER)
    assert r.status_code == 200 and r.headers["content-language"] == lang
    return r.text


def test_lot_page_numbers_and_dates_in_the_page_language(client: TestClient, big: Tenant) -> None:
    url = f"/l/{big.cherry['public_id']}"
    vi, en = page(client, url, "vi"), page(client, url, "en")
    # kilograms: thousands grouped as the locale groups them
    assert "5.006 kg" in vi and "5,006 kg" in en
    # a tree's part of the lot, one decimal
    assert "1.002,0" in vi and "1,002.0" in en
    # area (two decimals), share of the lot, altitude
    assert "1,00 ha" in vi and "1.00 ha" in en
    assert "100,0%" in vi and "100.0%" in en
    assert "500 m" in vi and "500 m" in en
    # dates as each language writes them, not one pattern for both
    assert "10 thg 11, 2025" in vi and "Nov 10, 2025" in en
    assert "10.11.2025" not in vi + en
    # the season's twelve months as a date interval of the locale (CLDR sets its dash
    # between thin spaces)
    assert "11 thg 11, 2024\u2009–\u200910 thg 11, 2025" in vi
    assert "Nov 11, 2024\u2009–\u2009Nov 10, 2025" in en


def test_tree_page_numbers_and_dates_in_the_page_language(
    client: TestClient, conn: psycopg.Connection, big: Tenant
) -> None:
    # a mountain plot: its altitude has a thousands separator
    conn.execute("update plots set altitude_m = 1450 where id = %s", (big.world.plot["id"],))
    conn.commit()
    url = f"/t/{big.world.trees[0]['public_id']}"
    vi, en = page(client, url, "vi"), page(client, url, "en")
    assert "1.001,0" in vi and "1,001.0" in en  # the season's cherry kilograms
    assert "1.450 m" in vi and "1,450 m" in en
    assert "1 thg 6, 2012" in vi and "Jun 1, 2012" in en  # planted


def test_measurements_are_numbers_of_the_page_language(
    client: TestClient, tenant_a: Tenant
) -> None:
    url = f"/l/{tenant_a.green['public_id']}"
    assert "độ ẩm 12,5 %" in page(client, url, "vi")
    assert "moisture 12.5 %" in page(client, url, "en")


def test_counts_are_grouped(client: TestClient, conn: psycopg.Connection, keys: KeyRing) -> None:
    tenant = make_tenant(conn, keys=keys, trees=1, with_lots=False)
    world = tenant.world
    rows = conn.execute(
        "insert into harvest_events (time, device_id, msg_id, cooperative_id, farm_id,"
        " plot_id, tree_id, cherry_kg, ripeness_pct, picker_code)"
        " select %(t)s + n * interval '1 second', %(dev)s, 'bulk-' || n, %(coop)s, %(farm)s,"
        " %(plot)s, %(tree)s, 1, 90, 'PK-0001' from generate_series(1, 1200) n returning id",
        {
            "t": HARVEST_DAY,
            "dev": world.devices["scale"].username,
            "coop": tenant.coop_id,
            "farm": world.farm["id"],
            "plot": world.plot["id"],
            "tree": world.trees[0]["id"],
        },
    ).fetchall()
    sealing.seal(conn, [r["id"] for r in rows], keys)  # type: ignore[index]
    conn.commit()
    url = f"/t/{world.trees[0]['public_id']}"
    assert '<td class="n">1.200</td>' in page(client, url, "vi")  # picks in the season
    assert '<td class="n">1,200</td>' in page(client, url, "en")


# -- free text in both languages ------------------------------------------------------


def test_variant_picks_the_page_language_and_marks_a_fallback() -> None:
    both = {"vi": "Phơi trên giàn", "en": "Dried on raised beds"}
    assert i18n.variant(both, "vi") == i18n.Variant("Phơi trên giàn")
    assert i18n.variant(both, "en") == i18n.Variant("Dried on raised beds")
    only_vi = {"vi": "Bao đay"}
    assert i18n.variant(only_vi, "en") == i18n.Variant("Bao đay", lang="vi")
    assert i18n.variant({"vi": " ", "en": "Jute bag"}, "vi") == i18n.Variant("Jute bag", "en")
    # plain text: shown as given, its language unknown, so not marked
    assert i18n.variant("natural", "en") == i18n.Variant("natural")
    assert i18n.variant(None, "vi") is None and i18n.variant("", "vi") is None
    assert i18n.variant({"vi": ""}, "vi") is None
    # an object that is not a language map is not mistaken for one
    assert not i18n.is_variants({"min": "1", "max": "2"})
    assert not i18n.is_variants({"vi": 1})


@pytest.fixture
def translated(conn: psycopg.Connection, keys: KeyRing, tenant_a: Tenant) -> str:
    """A grading step whose free text was given in both languages, or in one; its
    output lot's public id."""
    graded = processing.record_transformation(
        conn,
        tenant_a.coop_id,
        step="grading",
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        inputs=[(tenant_a.green["id"], 1)],
        outputs=[{"code": f"GR-{uuid.uuid4().hex[:6]}", "kg": 1, "kind": "green"}],
        measurements={
            "method": {"vi": "Phơi trên giàn", "en": "Dried on raised beds"},
            "packaging": {"vi": "Bao đay"},
            "moisture_pct": "12.25",
        },
        evidence=[
            {
                "type": "certificate",
                "name": {"vi": "Chứng nhận hữu cơ", "en": "Organic certificate"},
                "issuer": {"en": "Control Union"},
            }
        ],
        keys=keys,
    )
    conn.commit()
    return str(graded["outputs"][0]["public_id"])


def test_free_text_in_the_page_language(client: TestClient, translated: str) -> None:
    vi, en = page(client, f"/l/{translated}", "vi"), page(client, f"/l/{translated}", "en")
    assert "Phơi trên giàn" in vi and "Dried on raised beds" not in vi
    assert "Dried on raised beds" in en and "Phơi trên giàn" not in en
    assert "Chứng nhận hữu cơ" in vi and "Organic certificate" in en
    assert "độ ẩm 12,25 %" in vi and "moisture 12.25 %" in en  # numeric text is a number
    assert "{&#39;vi&#39;" not in vi + en and "{'vi'" not in vi + en  # never the raw object


def test_free_text_in_the_other_language_is_marked(client: TestClient, translated: str) -> None:
    vi, en = page(client, f"/l/{translated}", "vi"), page(client, f"/l/{translated}", "en")
    # given in Vietnamese only: the English page shows it, says so, and tags its language
    assert '<span lang="vi">Bao đay</span> <small class="muted">(in Vietnamese)</small>' in en
    assert "Bao đay" in vi and '<span lang="vi">Bao đay' not in vi
    # given in English only
    assert '<span lang="en">Control Union</span> <small class="muted">(tiếng Anh)</small>' in vi
    assert "Control Union" in en and '<span lang="en">' not in en


def test_both_languages_name_the_other_language() -> None:
    for lang in i18n.LANGS:
        assert set(i18n.texts(lang)["in_lang"]) == set(i18n.LANGS)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("vi", "10\u2009–\u200930 thg 11, 2025"), ("en", "Nov 10\u2009–\u200930, 2025")],
)
def test_a_harvest_period_is_a_date_interval(lang: str, expected: str) -> None:
    template = render.environment().from_string("{{ start | days(end) }}|{{ start | days }}")
    shown = template.render(lang=lang, start=date(2025, 11, 10), end=date(2025, 11, 30))
    single = "10 thg 11, 2025" if lang == "vi" else "Nov 10, 2025"
    assert shown == f"{expected}|{single}"


def test_chart_axis_values_in_the_page_locale() -> None:
    series = [(datetime(2025, 6, d, tzinfo=UTC), v) for d, v in ((1, 1234.0), (8, 5678.0))]
    for lang, top in (("vi", "5.678"), ("en", "5,678")):
        drawn = svg.chart(
            series,
            title="rain",
            unit="mm",
            bars=True,
            color="#000",
            month_names=[str(m) for m in range(1, 13)],
            number=lambda v, lang=lang: render.format_number(v, lang, 0),
        )
        assert drawn is not None and f">{top}</text>" in drawn, drawn


def test_a_product_name_per_language(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    tenant = make_tenant(conn, keys=keys, with_lots=False)
    conn.commit()
    made = client.post(
        "/v1/products",
        headers=tenant.auth("operator"),
        json={"name": "Ea Tu cherry", "kind": "cherry", "name_i18n": {"vi": "Quả cà phê Ea Tu"}},
    )
    assert made.status_code == 201 and made.json()["name_i18n"] == {"vi": "Quả cà phê Ea Tu"}
    refused = client.post(
        "/v1/products",
        headers=tenant.auth("operator"),
        json={"name": "X", "kind": "cherry", "name_i18n": {"fr": "Cerise"}},
    )
    assert refused.status_code == 422 and "name_i18n" in refused.text
    add_harvests(conn, tenant.world, start=HARVEST_DAY, keys=keys)
    lot = lots.build_cherry_lot(
        conn,
        tenant.coop_id,
        code=f"C-{uuid.uuid4().hex[:6]}",
        plot_ids=[tenant.world.plot["id"]],
        product_id=made.json()["id"],
        keys=keys,
    )
    conn.commit()
    url = f"/l/{lot['public_id']}"
    vi, en = page(client, url, "vi"), page(client, url, "en")
    assert "Quả cà phê Ea Tu" in vi and '<span lang="vi">Quả cà phê Ea Tu' not in vi
    # no English name given: the Vietnamese one, marked as such
    assert '<span lang="vi">Quả cà phê Ea Tu</span> <small class="muted">(in Vietnamese)' in en
    # the name per language is a registry fact: an edit behind the API's back is named
    conn.execute(
        'update products set name_i18n = \'{"vi": "Khác"}\' where id = %s', (made.json()["id"],)
    )
    conn.commit()
    assert registry_versions.verify_registry(conn, product_ids=[made.json()["id"]])


def test_a_step_place_per_language(
    client: TestClient, conn: psycopg.Connection, keys: KeyRing
) -> None:
    tenant = make_tenant(conn, keys=keys)
    conn.commit()
    assert tenant.green is not None
    made = client.post(
        "/v1/transformations",
        headers=tenant.auth("operator"),
        json={
            "step": "grading",
            "occurred_at": "2026-01-20T08:00:00+07:00",
            "inputs": [{"lot_id": str(tenant.green["id"]), "kg": 1}],
            "outputs": [{"code": f"G-{uuid.uuid4().hex[:6]}", "kg": 1, "kind": "green"}],
            "place": "Kho Ea Tu",
            "place_i18n": {"en": "Ea Tu warehouse"},
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["transformation"]["place_i18n"] == {"en": "Ea Tu warehouse"}
    out = made.json()["outputs"][0]
    url = f"/l/{out['public_id']}"
    vi, en = page(client, url, "vi"), page(client, url, "en")
    assert "Ea Tu warehouse" in en and '<span lang="en">Ea Tu warehouse' not in en
    assert '<span lang="en">Ea Tu warehouse</span> <small class="muted">(tiếng Anh)' in vi
    assert verification.verify_lot(conn, out["id"], keys=keys)["ok"]
    conn.execute(
        'update transformations set place_i18n = \'{"en": "Elsewhere"}\' where id = %s',
        (made.json()["transformation"]["id"],),
    )
    conn.commit()
    report = verification.verify_lot(conn, out["id"], keys=keys)
    assert not report["ok"] and any("place_i18n" in p["detail"] for p in report["problems"])
