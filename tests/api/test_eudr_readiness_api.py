"""GET /v1/lots/{id}/eudr/readiness and the plots' screenings over HTTP, against the real
database: blockers shown and cleared by an import, refusals named by row and field, the
single entry, capacity with a tight setting, GET /v1/lots/{id}/dds refused until ready
and forced by an admin (the override in the chain), and tenancy (404 for another's)."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.builders import Tenant

FILING = {"country": "DE", "operator_eori": "DE123456789012345"}


def readiness(client: TestClient, tenant: Tenant, role: str = "read-only") -> dict:
    r = client.get(f"/v1/lots/{tenant.green['id']}/eudr/readiness", headers=tenant.auth(role))
    assert r.status_code == 200, r.text
    return r.json()


def csv_for(tenant: Tenant, risk: str = "low") -> bytes:
    return (
        "plot,risk,source,analysis_id,analysis_date\n"
        f"{tenant.world.plot['code']},{risk},Whisp,whisp-1,2026-01-20\n"
    ).encode()


def post_csv(client: TestClient, tenant: Tenant, body: bytes, role: str = "operator"):
    return client.post(
        "/v1/plots/screenings",
        content=body,
        headers={**tenant.auth(role), "Content-Type": "text/csv"},
    )


def test_readiness_blocks_then_import_clears(client: TestClient, tenant_a: Tenant) -> None:
    found = readiness(client, tenant_a)
    assert found["ready"] is False
    (plot,) = found["plots"]
    assert [b["code"] for b in plot["blockers"]] == ["not_screened"]
    assert plot["present"]["trees"]["share_planted_by_cutoff"] == 1.0
    assert post_csv(client, tenant_a, csv_for(tenant_a), role="read-only").status_code == 403
    r = post_csv(client, tenant_a, csv_for(tenant_a))
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 1
    assert readiness(client, tenant_a)["ready"] is True
    listed = client.get(
        f"/v1/plots/{tenant_a.world.plot['id']}/screenings", headers=tenant_a.auth("read-only")
    )
    assert listed.status_code == 200
    assert [s["analysis_id"] for s in listed.json()["screenings"]] == ["whisp-1"]


def test_import_refusals_are_named(client: TestClient, tenant_a: Tenant) -> None:
    body = csv_for(tenant_a) + b"P-NOPE,low,Whisp,w,2026-01-20\nP-1,low,Whisp,w,someday\n"
    r = post_csv(client, tenant_a, body)
    assert r.status_code == 422
    errors = r.json()["details"]["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "plot"), (3, "analysis_date")]
    assert readiness(client, tenant_a)["ready"] is False  # nothing imported
    bad_type = client.post(
        "/v1/plots/screenings",
        content=b"x",
        headers={**tenant_a.auth("operator"), "Content-Type": "text/plain"},
    )
    assert bad_type.status_code == 422 and bad_type.json()["details"]["field"] == "file"


def test_single_entry_high_risk_needs_mitigation(client: TestClient, tenant_a: Tenant) -> None:
    url = f"/v1/plots/{tenant_a.world.plot['id']}/screenings"
    body = {"risk": "high", "source": "Global Forest Watch", "analysis_date": "2026-01-05",
            "note": "GFW alerts checked by the field officer"}  # fmt: skip
    r = client.post(url, json=body, headers=tenant_a.auth("operator"))
    assert r.status_code == 201, r.text
    (plot,) = readiness(client, tenant_a)["plots"]
    assert [b["code"] for b in plot["blockers"]] == ["high_risk_unmitigated"]
    missing_note = client.post(
        url, json={k: v for k, v in body.items() if k != "note"}, headers=tenant_a.auth("operator")
    )
    assert missing_note.status_code == 422
    mitigated = {**body, "analysis_date": "2026-01-06", "mitigation_note": "visit: no loss"}
    assert client.post(url, json=mitigated, headers=tenant_a.auth("operator")).status_code == 201
    assert readiness(client, tenant_a)["ready"] is True


def test_capacity_with_a_tight_setting(app: FastAPI, client: TestClient, tenant_a: Tenant) -> None:
    post_csv(client, tenant_a, csv_for(tenant_a))
    app.state.settings = app.state.settings.model_copy(update={"eudr_max_cherry_kg_per_ha": 0.001})
    (plot,) = readiness(client, tenant_a)["plots"]
    assert [b["code"] for b in plot["blockers"]] == ["volume_above_capacity"]
    assert plot["present"]["capacity"]["excess"]


def test_dds_refused_until_ready_and_forced_by_admin(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant
) -> None:
    url = f"/v1/lots/{tenant_a.green['id']}/dds"
    refused = client.get(url, params=FILING, headers=tenant_a.auth("operator"))
    assert refused.status_code == 422
    details = refused.json()["details"]
    assert details["rule"] == "eudr_not_ready"
    assert [b["code"] for b in details["blockers"]] == ["not_screened"]
    forced = {**FILING, "force": "true"}
    assert client.get(url, params=forced, headers=tenant_a.auth("operator")).status_code == 403
    ok = client.get(url, params=forced, headers=tenant_a.auth("admin"))
    assert ok.status_code == 200, ok.text
    event = conn.execute(
        "select payload from trace_events where kind = 'eudr_readiness_override'"
        " and %s = any(lot_ids)",
        (tenant_a.green["id"],),
    ).fetchone()
    assert [b["code"] for b in event["payload"]["blockers"]] == ["not_screened"]
    post_csv(client, tenant_a, csv_for(tenant_a))
    assert client.get(url, params=FILING, headers=tenant_a.auth("operator")).status_code == 200


def test_another_organisations_plot_and_lot_are_not_found(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    b = tenant_b.auth("admin")
    r = client.get(f"/v1/lots/{tenant_a.green['id']}/eudr/readiness", headers=b)
    assert r.status_code == 404
    plot_url = f"/v1/plots/{tenant_a.world.plot['id']}/screenings"
    assert client.get(plot_url, headers=b).status_code == 404
    body = {"risk": "low", "source": "x", "analysis_date": "2026-01-05", "note": "n"}
    assert client.post(plot_url, json=body, headers=b).status_code == 404
    # tenant B's file naming tenant A's plot by id is refused by name, nothing stored
    by_id = f"plot,risk,source,analysis_date\n{tenant_a.world.plot['id']},low,x,2026-01-05\n"
    r = post_csv(client, tenant_b, by_id.encode())
    assert r.status_code == 422 and r.json()["details"]["errors"][0]["field"] == "plot"
    assert readiness(client, tenant_a)["plots"][0]["present"]["screening"] is None
