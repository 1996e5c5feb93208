"""The ledger's shape of a batch's keys (ingest/ledger.py), and its SQL twin (migration 0056)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from coffeetrace.ingest.ledger import MAX_SEQ, ledger_rows, seq_key
from coffeetrace.migrate import available_migrations

KEYS = [
    "0",
    "7",
    "17",
    "017",
    "00",
    "-1",
    "+1",
    "1.0",
    " 1",
    "²",
    "١٢",
    "h-1",
    "",
    str(MAX_SEQ),
    str(MAX_SEQ + 1),
    "9" * 19,
    "1" * 40,
]


def test_seq_keys() -> None:
    assert [seq_key(k) for k in KEYS] == [
        0,
        7,
        17,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        MAX_SEQ,
        None,
        None,
        None,
    ]


def test_the_database_reads_keys_the_same_way(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select k, ingest_seq_key(k) as n from unnest(%s::text[]) k", (KEYS,)
    ).fetchall()
    assert {r["k"]: r["n"] for r in rows} == {k: seq_key(k) for k in KEYS}


def test_runs_per_device_and_kind() -> None:
    rows = ledger_rows(
        [
            ("a", "3", "telemetry", 4),
            ("a", "1", "telemetry", 4),
            ("b", "2", "telemetry", 1),
            ("a", "2", "telemetry", 3),
            ("a", "4", "harvest", 1),  # another kind: a run of its own
            ("a", "6", "telemetry", 4),  # a gap
            ("a", "h-1", "harvest", 1),
            ("b", "3", "telemetry", 1),
        ]
    )
    assert [(r.device_id, r.first, r.last, r.kind, r.readings) for r in rows.runs] == [
        ("a", 1, 3, "telemetry", [4, 3, 4]),
        ("a", 4, 4, "harvest", [1]),
        ("a", 6, 6, "telemetry", [4]),
        ("b", 2, 3, "telemetry", [1, 1]),
    ]
    assert rows.text_keys == [("a", "h-1", "harvest", 1)]
    assert len(rows.seqs) == 7


@pytest.mark.parametrize("n", [0, 1])
def test_no_keys(n: int) -> None:
    rows = ledger_rows([("a", "x", "harvest", 1)] * n)
    assert rows.runs == [] and len(rows.text_keys) == n


def test_migration_0056_moves_seq_keys_and_keeps_the_rest(pg_server: Any) -> None:
    """Ledger rows written before 0056: decimal keys become one-set ranges, the others stay
    text keys, and the view lists every row as the table had it."""
    name = f"ct_mig56_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            migrations = [m for m in available_migrations() if not m.requires_timescaledb]
            for mig in (m for m in migrations if m.version < "0056"):
                conn.execute(mig.sql)
            old = [
                ("d1", "7", "telemetry", 4),
                ("d1", "8", "telemetry", 3),
                ("d1", "007", "telemetry", 1),
                ("d1", "h-1", "harvest", 1),
                ("d2", "7", "harvest", 1),
                ("d2", str(MAX_SEQ + 1), "telemetry", 2),
            ]
            conn.cursor().executemany(
                "insert into ingest_messages (device_id, msg_id, kind, readings)"
                " values (%s, %s, %s, %s)",
                old,
            )
            (m56,) = [m for m in migrations if m.version == "0056"]
            conn.execute(m56.sql)
            view = conn.execute(
                "select device_id, msg_id, kind, readings from ingest_messages"
            ).fetchall()
            ranges = conn.execute(
                "select device_id, first_seq, last_seq, readings from ingest_seq_ranges"
                " order by 1, 2"
            ).fetchall()
            texts = conn.execute("select msg_id from ingest_text_keys order by 1").fetchall()
        assert sorted(view) == sorted(old)
        assert ranges == [("d1", 7, 7, [4]), ("d1", 8, 8, [3]), ("d2", 7, 7, [1])]
        assert [t[0] for t in texts] == ["007", str(MAX_SEQ + 1), "h-1"]
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
