"""Screening results for tests that export statements: the readiness gate of `export dds`
and GET /v1/lots/{id}/dds needs every plot of the lot screened."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from coffeetrace.trace import eudr_evidence
from coffeetrace.trace.keys import KeyRing


def screen_all_plots(
    conn: psycopg.Connection, keys: KeyRing, cooperative_id: Any, *, risk: str = "low"
) -> list[dict[str, Any]]:
    """A screening result for each plot of the cooperative, imported as a JSON file."""
    codes = [
        r["code"]
        for r in conn.execute(
            "select code from plots where cooperative_id = %s", (cooperative_id,)
        ).fetchall()
    ]
    data = json.dumps(
        [
            {"plot": c, "risk": risk, "source": "test screening", "analysis_date": "2026-01-15"}
            for c in codes
        ]
    ).encode()
    rows = eudr_evidence.import_screenings(
        conn,
        keys,
        cooperative_id,
        data,
        "json",
        recorded_by="test",
        max_rows=1000,
        max_bytes=1 << 20,
    )
    conn.commit()
    return rows
