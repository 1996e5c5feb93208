"""`coffeetrace api` serves the app alone, as in production."""

from __future__ import annotations

import json

from coffeetrace.api.bench import app_server, fetch


def test_coffeetrace_api_serves(db_url: str) -> None:
    with app_server(db_url, cache=True) as base:
        assert json.loads(fetch(f"{base}/healthz")) == {"status": "ok"}
        spec = json.loads(fetch(f"{base}/openapi.json"))
        assert "/01/{gtin}/10/{lot}" in spec["paths"] and "/v1/lots" in spec["paths"]
        assert b"swagger" in fetch(f"{base}/docs").lower()
