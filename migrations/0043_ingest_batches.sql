-- Evidence of what ingest stored: one chain entry per committed batch and cooperative.
--
-- Each transaction of ingest (ingest/store.py write_batch) appends, per cooperative whose
-- records it wrote, one trace event of kind 'ingest_batch' whose payload holds the Merkle
-- root (RFC 9162, coffeetrace.trace.merkle) over the leaves of those records, in the
-- order they were written: {"root": hex, "size": n, "harvests": h, "reading_sets": r}.
-- A record's leaf is SHA-256(0x00 || its canonical bytes), the bytes being recomputable
-- from the stored rows (coffeetrace.trace.records: harvest v1, reading set v1). The
-- cost is one event per batch, not per record; a record proves its inclusion with an
-- audit path to that root (coffeetrace.trace.batches).
--
-- ingest_batches: the batch behind each such event. Element i of the arrays and bytes
-- [32 i, 32 i + 32) of `leaves` describe record i: its device, its key (the ledger's
-- msg_id), its kind ('harvest' or 'telemetry') and its time. They say where to find the
-- record again; its leaf says what it held. Never pruned (it is evidence); about 80
-- bytes a record.
create table ingest_batches (
    event_seq       bigint primary key references trace_events (seq) on delete cascade,
    cooperative_id  uuid not null,
    device_ids      text[] not null,
    msg_ids         text[] not null,
    kinds           text[] not null,
    times           timestamptz[] not null,
    leaves          bytea not null check (length(leaves) % 32 = 0)
);
-- 32 random bytes a record do not compress: no compression attempts on them. The arrays
-- compress well (one device, one kind, consecutive keys and times): lz4 where the server
-- has it (it does this at a fraction of pglz's CPU), else the default.
alter table ingest_batches alter column leaves set storage external;
do $$
begin
    alter table ingest_batches
        alter column device_ids set compression lz4,
        alter column msg_ids set compression lz4,
        alter column kinds set compression lz4,
        alter column times set compression lz4;
exception when feature_not_supported then
    raise notice 'no lz4 on this server: ingest_batches arrays use the default compression';
end
$$;

-- A harvest's place in its batch: the event (trace_events.seq) and the leaf index. Null on
-- rows written before this migration, and on rows inserted by other means than ingest or
-- trace.batches.seal_harvests: verification reports those as without evidence.
-- (two statements: TimescaleDB adds one column at a time to a compressed hypertable)
alter table harvest_events add column batch_seq bigint;
alter table harvest_events add column batch_index integer;
create index harvest_events_batch_idx on harvest_events (batch_seq, batch_index);

-- Reading sets get no column: sensor_readings holds one row per metric, and a reading
-- set is found again by (device_id, time), from the batch's arrays, through the existing
-- sensor_readings_device_time_idx. What this cannot tell apart: two telemetry sets of
-- one device with the same time (different seq or msg_id, so both were stored) share
-- their rows; verification then looks for a subset of those rows, one per metric, that
-- gives each set's leaf, and reports the set only when none does. A row added at a
-- device's time, beside a set that still verifies, is not noticed; readings at a time
-- no batch names are no batch's evidence at all.
