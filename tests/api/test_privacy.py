"""Public pages and JSON never carry personal data (Law 91/2025/QH15): no phone or ID
numbers, no owner names, no farm display name without consent."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.trace import registry_versions, statements
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import GTIN, Tenant

PHONE = re.compile(r"(?<![\w.-])(\+84|0)\d{9,10}(?![\w])")
NATIONAL_ID = re.compile(r"(?<![\w.-])\d{9}(\d{3})?(?![\w.])")


def edit_farm(
    conn: psycopg.Connection, keys: KeyRing, tenant: Tenant, assignments: str, *params: object
) -> None:
    """Change the tenant's farm as the registry would: the row, its new version, and the
    lots' statements signed again (public pages serve what was signed, not the rows)."""
    farm, coop = tenant.world.farm["id"], tenant.coop_id
    conn.execute(f"update farms set {assignments} where id = %s", (*params, farm))
    registry_versions.record_versions(conn, keys, coop, "farm", [farm])
    lot_ids = [
        r["id"] for r in conn.execute("select id from lots where cooperative_id = %s", (coop,))
    ]
    statements.refresh(conn, keys, coop, lot_ids)
    conn.commit()


def public_responses(client: TestClient, tenant: Tenant) -> dict[str, str]:
    lot = tenant.green["public_id"]
    out: dict[str, str] = {}
    for name, url, headers in [
        ("page_vi", f"/l/{lot}?lang=vi", {"Accept": "text/html"}),
        ("page_en", f"/l/{lot}?lang=en", {"Accept": "text/html"}),
        ("cherry_page", f"/l/{tenant.cherry['public_id']}", {"Accept": "text/html"}),
        ("json", f"/l/{lot}", {"Accept": "application/json"}),
        ("verify", f"/l/{lot}/verify", {}),
        ("epcis", f"/l/{lot}/epcis", {}),
        ("linkset", f"/01/{GTIN}/10/{tenant.green['code']}?linkType=linkset", {}),
        ("dl_page", f"/01/{GTIN}/10/{tenant.green['code']}", {"Accept": "text/html"}),
    ] + [
        (f"tree_{t['tag_code']}", f"/t/{t['public_id']}", {"Accept": "text/html"})
        for t in tenant.world.trees
    ]:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        out[name] = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return out


def test_no_personal_data_on_public_surfaces(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, keys: KeyRing
) -> None:
    # a farm that did not consent to its display name being shown
    edit_farm(
        conn, keys, tenant_a, "display_name = %s, display_name_consent = false", "Vườn Bà Hai"
    )
    private = conn.execute(
        "select owner_name, phone, national_id from farm_private where farm_id = %s",
        (tenant_a.world.farm["id"],),
    ).fetchone()
    assert private["phone"] and private["national_id"] and private["owner_name"]
    secrets = [
        private["owner_name"],
        private["phone"],
        private["phone"].replace("+84", "0"),
        private["national_id"],
        "Vườn Bà Hai",
    ]
    for name, text in public_responses(client, tenant_a).items():
        for secret in secrets:
            assert secret not in text, (name, secret)
        assert not PHONE.search(text), (name, PHONE.search(text))
        assert not NATIONAL_ID.search(text), (name, NATIONAL_ID.search(text))
    # the farm is still named, by its pseudonymous code
    page = client.get(f"/l/{tenant_a.green['public_id']}?lang=en", headers={"Accept": "text/html"})
    assert tenant_a.world.farm["code"] in page.text


def test_the_scan_can_fail(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, keys: KeyRing
) -> None:
    """Control: a consented display name that looks like a phone number is caught."""
    edit_farm(conn, keys, tenant_a, "display_name = %s", "0912345678")
    texts = public_responses(client, tenant_a)
    assert PHONE.search(texts["page_en"])
