"""`coffeetrace api` serves the app alone, as in production."""

from __future__ import annotations

import json

from tests.api.server import api_command, fetch


def test_coffeetrace_api_serves(db_url: str) -> None:
    with api_command(db_url) as base:
        assert json.loads(fetch(f"{base}/healthz")) == {"status": "ok"}
        spec = json.loads(fetch(f"{base}/openapi.json"))
        assert "/01/{gtin}/10/{lot}" in spec["paths"] and "/v1/lots" in spec["paths"]
        assert b"swagger" in fetch(f"{base}/docs").lower()
