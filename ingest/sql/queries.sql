-- Queries of the ingest consumer. Readings, harvests and dead letters are written with
-- COPY (see store.py); only the ledger and the small tables use statements.

-- name: devices_by_id
-- A device with the plot it reports for (its own, or its tree's) and that plot's farm.
select d.id, d.cooperative_id, d.kind, d.tree_id, d.active, d.registered_at,
       coalesce(d.plot_id, t.plot_id) as plot_id, p.farm_id
from devices d
left join trees t on t.id = d.tree_id
left join plots p on p.id = coalesce(d.plot_id, t.plot_id)
where d.id = any(%(ids)s);

-- name: trees_by_tag
select t.id, t.tag_code, t.plot_id, p.farm_id
from trees t
join plots p on p.id = t.plot_id
where t.cooperative_id = %(cooperative_id)s and t.tag_code = any(%(tags)s);

-- name: copy_seq_ranges
-- The ledger decides idempotency once per reading set (migration 0056): runs of
-- consecutive seq keys of one device go in as one row each, other keys as one row each in
-- ingest_text_keys (copy_text_keys). The usual batch holds no key seen before, and COPY
-- claims its keys at less than half the cost of the claim_* statements (no speculative
-- insertion): store.py tries both COPYs first, under a savepoint, and falls back to
-- claim_seqs and claim_text_keys only when the exclusion constraint or the unique key
-- refuses a row. Concurrent consumers (shared subscription) wait on each other's
-- uncommitted keys either way, so exactly one of them claims a key.
copy ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings)
from stdin (format binary);

-- name: copy_text_keys
copy ingest_text_keys (device_id, msg_id, kind, readings) from stdin (format binary);

-- name: claim_seqs
-- The claim of seq keys of a batch that may hold keys seen before, one range of one set
-- each: a set is new when no range of its device covers it; only new sets come back.
-- Keys travel as newline-joined text (see claim_text_keys).
insert into ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings)
select d, s, s, k, array[n]
from unnest(string_to_array(%(device_ids)s, E'\n'),
            string_to_array(%(seqs)s, E'\n')::bigint[],
            string_to_array(%(kinds)s, E'\n'),
            string_to_array(%(readings)s, E'\n')::int[]) as u (d, s, k, n)
on conflict do nothing
returning device_id, first_seq;

-- name: claim_text_keys
-- The claim of the other keys of such a batch: only keys not seen before come back, and
-- only their readings are written.
-- The keys travel as newline-joined text (ids never contain a newline): far cheaper to
-- send than arrays built element by element on the client.
insert into ingest_text_keys (device_id, msg_id, kind, readings)
select * from unnest(string_to_array(%(device_ids)s, E'\n'),
                     string_to_array(%(msg_ids)s, E'\n'),
                     string_to_array(%(kinds)s, E'\n'),
                     string_to_array(%(readings)s, E'\n')::int[])
on conflict do nothing
returning device_id, msg_id;

-- name: upsert_device_status
insert into device_status (device_id, online, battery_pct, firmware, updated_at)
select * from unnest(%(device_ids)s::text[], %(online)s::bool[], %(battery)s::float8[],
                     %(firmware)s::text[], %(updated_at)s::timestamptz[])
on conflict (device_id) do update set
    online = excluded.online,
    battery_pct = coalesce(excluded.battery_pct, device_status.battery_pct),
    firmware = coalesce(excluded.firmware, device_status.firmware),
    updated_at = excluded.updated_at
where device_status.updated_at <= excluded.updated_at;

-- name: copy_readings
-- binary: the client's C dumpers for these types (store.READING_TYPES) beat text formatting
copy sensor_readings (time, device_id, plot_id, tree_id, metric, value)
from stdin (format binary);

-- name: copy_harvests
-- batch_seq, batch_index: the harvest's leaf in its batch's ingest_batch event (store.py)
copy harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id, tree_id,
                     cherry_kg, ripeness_pct, picker_code, batch_seq, batch_index) from stdin;

-- name: count_dead_letters
-- Count a batch's dead letters per device in the current hour and learn, per device, how
-- many of them may still get a row (COFFEETRACE_INGEST_DEAD_LETTERS_PER_DEVICE_HOUR).
-- In DO UPDATE, `h.` is the row before this batch: the share is decided under its lock,
-- so concurrent consumers never keep more than the cap between them.
insert into dead_letter_hours as h (device_id, hour, received, kept, kept_last, last_reason)
select d, date_trunc('hour', now()), n, least(n, %(cap)s), least(n, %(cap)s), r
from unnest(%(device_ids)s::text[], %(counts)s::int[], %(reasons)s::text[]) as u(d, n, r)
on conflict (device_id, hour) do update set
    received = h.received + excluded.received,
    kept = h.kept + greatest(0, least(excluded.received, %(cap)s - h.kept)),
    kept_last = greatest(0, least(excluded.received, %(cap)s - h.kept)),
    last_reason = excluded.last_reason
returning device_id, kept_last;

-- name: copy_dead_letters
copy dead_letters (topic, device_id, msg_id, reason, payload, payload_size, payload_encoding)
from stdin;
