-- Queries of `coffeetrace bench ingest` (bench/ingest.py), on its scratch database.

-- name: bench_ingest_backdate_devices
-- The bench's devices were registered an hour ago: readings of the last 10 minutes are
-- in its 100-reading messages (ingest refuses readings older than a device's registration).
update devices set registered_at = now() - interval '1 hour';

-- name: bench_ingest_copy_readings
-- Ceiling (b), raw COPY: the very statement ingest stores readings with
-- (ingest/sql/queries.sql, copy_readings); binary, with the client's C dumpers for these
-- types (coffeetrace.ingest.store.READING_TYPES).
copy sensor_readings (time, device_id, plot_id, tree_id, metric, value)
from stdin (format binary)

-- name: bench_ingest_empty_store
-- (b) and (c) with 100 readings a message each start from an empty table and ledger.
truncate sensor_readings, ingest_text_keys, ingest_seq_ranges;
