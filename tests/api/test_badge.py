"""The tamper warning of the lot page: drawn as a warning, counted in proper words."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.api import i18n, render
from tests.api.builders import Tenant

BROWSER = {"Accept": "text/html"}
GREEN = "#2f7d32"


def test_tamper_warning_is_not_green_and_counts_properly(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    conn.execute(
        "update lots set quantity_kg = quantity_kg + 100 where id = %s", (tenant_a.green["id"],)
    )
    conn.commit()
    n = len(client.get(f"/l/{tenant_a.green['public_id']}/verify").json()["chain"]["problems"])
    page = client.get(f"/l/{tenant_a.green['public_id']}?lang=en", headers=BROWSER).text
    assert "problem(s)" not in page
    word = "problem" if n == 1 else "problems"
    assert f"Verification failed: {n} {word} found" in page
    # the warning's text has a colour of its own, declared after (and as specific as)
    # the green of `.badge strong`
    style = page[page.index("<style") : page.index("</style>")]
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", style)
    green_at = next(i for i, (sel, _) in enumerate(rules) if sel.strip() == ".badge strong")
    warn = [
        (i, body)
        for i, (sel, body) in enumerate(rules)
        if re.fullmatch(r"\.(badge)?\.?warn strong", sel.strip()) and "color" in body
    ]
    assert warn and warn[-1][0] > green_at and GREEN not in warn[-1][1]


def test_plural_forms_in_both_languages() -> None:
    en, vi = i18n.texts("en"), i18n.texts("vi")
    assert render.plural(en, "verify_failed", 1).startswith("Verification failed: 1 problem found")
    assert "2 problems found" in render.plural(en, "verify_failed", 2)
    assert render.plural(en, "events_checked", 1) == "1 event checked"
    assert render.plural(en, "events_checked", 3) == "3 events checked"
    assert "phát hiện 1 vấn đề" in render.plural(vi, "verify_failed", 1)
    assert "phát hiện 4 vấn đề" in render.plural(vi, "verify_failed", 4)
    assert "(s)" not in "".join(str(v) for v in en.values())
