"""Tampering as it happens in the field: plain SQL behind the application's back, then the
`coffeetrace verify` command in its own process, the public verify answer and the page's
badge. A kept checkpoint, fetched from the public URL, still proves a rewrite after the
store's own checkpoints and the witness were wiped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace import checkpoints
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant

BROWSER = {"Accept": "text/html"}


@pytest.fixture
def tenant(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    t = make_tenant(conn, keys=keys)
    conn.commit()
    return t


@pytest.fixture
def client(settings: Settings) -> Any:
    # ttl 0: every request re-verifies, as a page does once its cache entry is due
    app = create_app(
        settings.model_copy(update={"page_cache_recheck_s": 0.0, "page_cache_ttl_s": 0.0})
    )
    with TestClient(app) as c:
        yield c


def _verify_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COFFEETRACE_DATABASE_URL": str(settings.database_url),
        "COFFEETRACE_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "coffeetrace", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_command_names_an_edited_harvest(
    conn: psycopg.Connection, settings: Settings, tenant: Tenant
) -> None:
    assert tenant.green is not None and tenant.cherry is not None
    lot = tenant.green["public_id"]
    ok = _verify_cli(settings, lot)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    harvest = conn.execute(
        "select harvest_id from lot_harvests where lot_id = %s limit 1", (tenant.cherry["id"],)
    ).fetchone()
    assert harvest is not None
    conn.execute(
        "update harvest_events set cherry_kg = cherry_kg * 2 where id = %s",
        (harvest["harvest_id"],),
    )
    conn.commit()
    bad = _verify_cli(settings, lot)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    said = bad.stdout + bad.stderr  # the report goes where the console writes (stderr)
    assert "TAMPERED" in said
    assert f"harvest {harvest['harvest_id']}" in said
    as_json = json.loads(_verify_cli(settings, lot, "--json").stdout)
    assert {"type": "harvest", "id": str(harvest["harvest_id"])} in [
        p.get("record") for p in as_json["problems"]
    ]


def test_public_verify_and_badge_show_an_edited_plot(
    conn: psycopg.Connection, client: TestClient, tenant: Tenant
) -> None:
    assert tenant.green is not None
    lot = tenant.green["public_id"]
    before = client.get(f"/l/{lot}/verify").json()
    assert before["ok"] is True and before["signature"]["valid"] is True
    assert before["checkpoint"]["body"]["tree_size"] > 0
    assert before["inclusion"], "the lot's events come with their inclusion proofs"
    conn.execute("update plots set area_ha = area_ha * 3 where id = %s", (tenant.world.plot["id"],))
    conn.commit()
    after = client.get(f"/l/{lot}/verify").json()
    assert after["ok"] is False
    assert {"type": "plot", "id": str(tenant.world.plot["id"])} in [
        p.get("record") for p in after["chain"]["problems"]
    ]
    page = client.get(f"/l/{lot}?lang=en", headers=BROWSER).text
    assert "Verification failed" in page


def test_kept_checkpoint_from_the_public_url_proves_a_truncation(
    conn: psycopg.Connection,
    client: TestClient,
    settings: Settings,
    keys: KeyRing,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    coop = tenant.world.coop
    kept = client.get(f"/chain/{coop['code']}/checkpoint")
    assert kept.status_code == 200
    kept_file = tmp_path / "kept.json"
    kept_file.write_text(kept.text)
    assert (
        _verify_cli(settings, "--coop", coop["code"], "--checkpoint", str(kept_file)).returncode
        == 0
    )
    newest = conn.execute(
        "select seq from trace_events where cooperative_id = %s order by seq desc limit 1",
        (coop["id"],),
    ).fetchone()
    assert newest is not None
    # cut the newest event, and wipe every trace of it the store and the witness kept
    conn.execute("delete from trace_events where seq = %s", (newest["seq"],))
    conn.execute("delete from chain_checkpoints where cooperative_id = %s", (coop["id"],))
    conn.commit()
    assert checkpoints.witnessed(keys, coop["id"]) is not None  # the witness saw it ...
    (keys.root / str(coop["id"]) / "witness.json").unlink()  # ... and its file is gone
    bad = _verify_cli(settings, "--coop", coop["code"], "--checkpoint", str(kept_file))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    said = bad.stdout + bad.stderr
    assert "chain_truncated" in said
    assert f"seq {newest['seq']}" in said
