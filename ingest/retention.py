"""Retention of the idempotency ledger.

The ledger (`ingest_seq_ranges` and `ingest_text_keys`, seen together as the view
`ingest_messages`) is what makes a resent reading set add nothing: one entry per set ever
accepted (a run of consecutive seqs is one row). Kept forever it would grow with the
province's reading sets (billions a year). A device resends only what it has not had
acknowledged, and its buffer holds days, not months; so rows older than the retention
window can go. A set resent
after its row was pruned would be stored a second time: the window must stay well beyond
any device's buffer (default 30 days).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import LiteralString

from coffeetrace import db
from coffeetrace.db import DbConn
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.ingest", "retention.sql")

log = logging.getLogger(__name__)

BATCH = 10_000


def _delete_in_batches(conn: DbConn, query: LiteralString, before: datetime, batch: int) -> int:
    """Run a bounded delete until it deletes less than `batch`: short transactions, so
    ingest writing meanwhile never waits long on a lock."""
    total = 0
    while True:
        deleted = conn.execute(query, {"before": before, "batch": batch}).rowcount
        total += deleted
        if deleted < batch:
            return total


def prune_ledger(settings: Settings, *, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete ledger rows older than the window, in short transactions; return how many
    rows (a run of seqs is one)."""
    days = settings.ingest_ledger_retention_days
    if days <= 0:
        return 0
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    with db.connect(settings.effective_database_url(), autocommit=True) as conn:
        total = _delete_in_batches(conn, SQL["prune_ledger_seq_ranges"], before, batch)
        total += _delete_in_batches(conn, SQL["prune_ledger_text_keys"], before, batch)
    log.info("ledger_pruned rows=%s before=%s", total, before.isoformat())
    return total


def prune_dead_letters(
    settings: Settings, *, now: datetime | None = None, batch: int = BATCH
) -> int:
    """Delete dead letters (and their hourly counts) older than their own window."""
    days = settings.ingest_dead_letter_retention_days
    if days <= 0:
        return 0
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    with db.connect(settings.effective_database_url(), autocommit=True) as conn:
        total = _delete_in_batches(conn, SQL["prune_dead_letters"], before, batch)
        conn.execute(SQL["prune_dead_letter_hours"], {"before": before})
    log.info("dead_letters_pruned rows=%s before=%s", total, before.isoformat())
    return total


class LedgerPruner(threading.Thread):
    """Prunes the ledger and the dead letters at start and then every `interval_s`, until
    stopped."""

    def __init__(self, settings: Settings, stop: threading.Event, interval_s: float = 3600) -> None:
        super().__init__(name="ledger-pruner", daemon=True)
        self.settings, self.stop, self.interval_s = settings, stop, interval_s

    def run(self) -> None:
        while not self.stop.is_set():
            for prune in (prune_ledger, prune_dead_letters):
                try:
                    prune(self.settings)
                except Exception:  # retried at the next interval; ingest goes on
                    log.exception("%s_failed", prune.__name__)
            self.stop.wait(self.interval_s)
