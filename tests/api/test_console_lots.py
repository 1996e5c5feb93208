"""Console screens over HTTP on a real database: Today, building a cherry lot from the
harvests selected and recording processing steps through the forms (one refused by mass
balance, then corrected), each recorded on the chain as the API records it; another
cooperative's lot is 404; the QR code and the labels PDF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.api.console.pages_today import day_and_season_start
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, add_harvests
from tests.api.console_helpers import csrf_of, login, make_user

HARVEST_BOX = re.compile(r'name="harvest_id" value="([0-9a-f-]{36})"')
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _fresh_harvests(conn: psycopg.Connection, tenant: Tenant, keys: KeyRing) -> datetime:
    start = datetime.now(UTC) - timedelta(minutes=30)
    add_harvests(conn, tenant.world, start=start, keys=keys)
    conn.commit()
    return start


def _events(conn: psycopg.Connection, kind: str, lot_id: object) -> list[dict]:
    return conn.execute(
        "select seq, payload from trace_events where kind = %s and %s = any(lot_ids)",
        (kind, lot_id),
    ).fetchall()


def test_today_shows_the_harvest(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    settings: Settings,
    keys: KeyRing,
) -> None:
    _fresh_harvests(conn, tenant_a, keys)
    login(client, tenant_a, make_user(conn, tenant_a, "read-only", settings))
    client.get("/console/lang/en")
    page = client.get("/console/")
    assert page.status_code == 200
    day_start, season_start = day_and_season_start(datetime.now(UTC), ZONE)
    sums = conn.execute(
        "select coalesce(sum(cherry_kg) filter (where time >= %s), 0)::float8 as today,"
        " sum(cherry_kg)::float8 as season from harvest_events"
        " where cooperative_id = %s and time >= %s",
        (day_start, tenant_a.coop_id, season_start),
    ).fetchone()
    assert sums["season"] > 0
    assert f'id="season-kg">{sums["season"]:,.1f} kg' in page.text
    assert f'id="today-kg">{sums["today"]:,.1f} kg' in page.text
    assert tenant_a.world.plot["code"] in page.text
    assert tenant_a.world.devices["scale"].username in page.text  # devices listed


def test_build_lot_and_steps_through_the_forms(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    settings: Settings,
    keys: KeyRing,
) -> None:
    _fresh_harvests(conn, tenant_a, keys)
    login(client, tenant_a, make_user(conn, tenant_a, "operator", settings))
    page = client.get("/console/harvests?unassigned=1")
    chosen = HARVEST_BOX.findall(page.text)
    assert len(chosen) == len(tenant_a.world.trees)  # the new ones; the old are in a lot
    built = client.post(
        "/console/harvests/lot",
        data={"csrf": csrf_of(page.text), "code": "C-FORM-1", "harvest_id": chosen[:3]},
        follow_redirects=False,
    )
    assert built.status_code == 303, built.text
    lot = conn.execute(
        "select id, quantity_kg::float8 as kg from lots where code = 'C-FORM-1'"
    ).fetchone()
    assert built.headers["location"] == f"/console/lots/{lot['id']}?made=1"
    expected = conn.execute(
        "select sum(cherry_kg)::float8 as kg from harvest_events where id = any(%s::uuid[])",
        (chosen[:3],),
    ).fetchone()["kg"]
    assert lot["kg"] == expected
    (created,) = _events(conn, "lot_created", lot["id"])

    # the same harvests again: the domain's refusal, in Vietnamese, in the form
    again = client.post(
        "/console/harvests/lot",
        data={"csrf": csrf_of(page.text), "code": "C-FORM-2", "harvest_id": chosen[:1]},
    )
    assert again.status_code == 422 and "đã vào hết" in again.text

    detail = client.get(f"/console/lots/{lot['id']}")
    assert detail.status_code == 200 and 'id="limits"' in detail.text
    when = datetime.now(ZONE).strftime("%Y-%m-%dT%H:%M")
    step = {
        "csrf": csrf_of(detail.text),
        "step": "drying",
        "occurred_at": when,
        "input_kg": str(lot["kg"]),
        "code": "D-FORM-1",
        "output_kg": str(round(lot["kg"] * 0.9, 3)),  # drying keeps at most 0.6
        "kind": "dried_cherry",
        "place": "Sân phơi",
    }
    refused = client.post(f"/console/lots/{lot['id']}/steps", data=step)
    assert refused.status_code == 422
    assert "vượt quá tỷ lệ tối đa" in refused.text and 'id="step-error"' in refused.text
    assert 'value="D-FORM-1"' in refused.text  # what was typed stays in the form
    assert conn.execute("select count(*) as n from transformations").fetchone()["n"] == 2
    corrected = client.post(
        f"/console/lots/{lot['id']}/steps",
        data={**step, "output_kg": str(round(lot["kg"] * 0.5, 3)).replace(".", ",")},
        follow_redirects=False,
    )
    assert corrected.status_code == 303, corrected.text
    dried = conn.execute(
        "select id, quantity_kg::float8 as kg from lots where code = 'D-FORM-1'"
    ).fetchone()
    assert dried["kg"] == round(lot["kg"] * 0.5, 3)
    (event,) = _events(conn, "transformation", dried["id"])
    assert event["seq"] > created["seq"] and event["payload"]["step"] == "drying"
    # the chain verifies as the API's verification sees it
    verdict = client.get(f"/v1/lots/{dried['id']}/verify", headers=tenant_a.auth("read-only"))
    assert verdict.json()["ok"] is True
    shown = client.get(f"/console/lots/{dried['id']}").text
    assert "C-FORM-1" in shown and "phơi sấy" in shown


def test_another_cooperatives_lot_is_404(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    tenant_b: Tenant,
    settings: Settings,
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "admin", settings))
    token = csrf_of(client.get("/console/lots").text)
    theirs = tenant_b.green["id"]
    assert client.get(f"/console/lots/{theirs}").status_code == 404
    assert client.get(f"/console/lots/{theirs}/qr.svg").status_code == 404
    assert client.get(f"/console/labels.pdf?lot={theirs}").status_code == 404
    step = client.post(
        f"/console/lots/{theirs}/steps",
        data={
            "csrf": token,
            "step": "packing",
            "occurred_at": "2025-12-30T10:00",
            "input_kg": "1",
            "code": "X-1",
            "output_kg": "1",
            "kind": "packed",
        },
    )
    assert step.status_code == 404
    assert client.get("/console/lots/not-a-uuid").status_code == 404
    assert conn.execute("select count(*) as n from lots where code = 'X-1'").fetchone()["n"] == 0


def test_qr_and_labels_of_own_lot(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "read-only", settings))
    green = tenant_a.green["id"]
    page = client.get(f"/console/lots/{green}")
    assert 'id="public-link"' in page.text and "http://testserver/01/" in page.text
    svg = client.get(f"/console/lots/{green}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    pdf = client.get(f"/console/labels.pdf?lot={green}&lot={tenant_a.cherry['id']}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get("/console/labels.pdf").status_code == 422  # no lot named


def test_hostile_form_values(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "operator", settings))
    token = csrf_of(client.get("/console/harvests").text)
    nul = client.post(
        "/console/harvests/lot", data={"csrf": token, "code": "A\x00B", "harvest_id": "x"}
    )
    assert nul.status_code == 422
    huge = client.get("/console/harvests?plot=" + "f" * 5000)
    assert huge.status_code == 422
    odd = client.get("/console/harvests?from=2025-13-45")
    assert odd.status_code == 422 and "from" in odd.text
    for target in ("https://evil.example/", "//evil.example/console/", "/console\\x"):
        answer = client.get("/console/lang/en", params={"next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/console/"
