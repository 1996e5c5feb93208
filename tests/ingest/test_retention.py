"""The idempotency ledger forgets reading sets older than its window, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from coffeetrace.ingest.retention import prune_ledger
from coffeetrace.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def ages(conn: psycopg.Connection) -> list[int]:
    rows = conn.execute(
        "select msg_id from ingest_messages where kind = 'telemetry' order by msg_id::int"
    ).fetchall()
    return [int(r["msg_id"]) for r in rows]


def test_prune_keeps_the_window(conn: psycopg.Connection, settings: Settings) -> None:
    # one ledger row per day of age, 0 to 59 days old
    # (the seq ranges of migration 0056, one set each, and a text key beside each)
    conn.execute(
        "insert into ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings,"
        " received_at)"
        " select 'dev-1', d, d, 'telemetry', array[1],"
        "  %(now)s - d * interval '1 day' + interval '1 min'"
        " from generate_series(0, 59) d",
        {"now": NOW},
    )
    conn.execute(
        "insert into ingest_text_keys (device_id, msg_id, kind, readings, received_at)"
        " select 'dev-1', 'h-' || d, 'harvest', 1,"
        "  %(now)s - d * interval '1 day' + interval '1 min'"
        " from generate_series(0, 59) d",
        {"now": NOW},
    )
    conn.commit()
    deleted = prune_ledger(
        settings.model_copy(update={"ingest_ledger_retention_days": 30}), now=NOW, batch=7
    )  # several batches
    assert deleted == 2 * 29  # 31 to 59 days old go; 30 days less a minute stays
    assert ages(conn) == list(range(31))
    texts = conn.execute("select msg_id from ingest_text_keys order by msg_id").fetchall()
    assert sorted(int(r["msg_id"][2:]) for r in texts) == list(range(31))


def test_zero_days_keeps_everything(conn: psycopg.Connection, settings: Settings) -> None:
    conn.execute(
        "insert into ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings,"
        " received_at) values ('dev-1', 1, 1, 'telemetry', array[1], %s)",
        (NOW - timedelta(days=400),),
    )
    conn.commit()
    kept = settings.model_copy(update={"ingest_ledger_retention_days": 0})
    assert prune_ledger(kept, now=NOW) == 0
    assert ages(conn) == [1]
