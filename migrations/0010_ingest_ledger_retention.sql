-- The idempotency ledger grows by one row per reading set; rows older than the replay
-- window (COFFEETRACE_INGEST_LEDGER_RETENTION_DAYS) are pruned by ingest, oldest first.
create index ingest_messages_received_idx on ingest_messages (received_at);
