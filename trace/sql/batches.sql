-- The batches behind 'ingest_batch' chain events (trace/batches.py, migration 0043).

-- name: batches_insert
-- One batch's records, in leaf order. Ids and kinds travel as newline-joined text (they
-- never hold a newline: far cheaper for both sides than text arrays built element by
-- element, as for the ledger claim), times as a binary timestamptz[] and the leaves as
-- binary bytea (no hex to parse). Measured for 7,000 records: 2.7 ms of the server's CPU.
insert into ingest_batches (event_seq, cooperative_id, device_ids, msg_ids, kinds, times, leaves)
select %(seq)s, %(cooperative_id)s,
       string_to_array(%(device_ids)s, E'\n'),
       string_to_array(%(msg_ids)s, E'\n'),
       string_to_array(%(kinds)s, E'\n'),
       %(times)b,
       %(leaves)b;

-- name: batches_harvests_by_ids
-- Harvest rows with what helps name an edited field: the plot of the row's tree (null
-- when no such tree) and the farm of the row's plot.
select h.*, t.plot_id as tree_plot_id, p.farm_id as plot_farm_id
from harvest_events h
left join trees t on t.id = h.tree_id
left join plots p on p.id = h.plot_id
where h.id = any(%(ids)s::uuid[]);

-- name: batches_harvests_of_batch
select h.*, t.plot_id as tree_plot_id, p.farm_id as plot_farm_id
from harvest_events h
left join trees t on t.id = h.tree_id
left join plots p on p.id = h.plot_id
where h.batch_seq = %(seq)s
order by h.batch_index, h.id;

-- name: batches_by_seqs
-- Each asked-for seq with its ingest_batches row and its trace event, either of which
-- may be missing.
select s.seq, b.event_seq as batch_seq, b.cooperative_id as batch_cooperative_id,
       b.device_ids, b.msg_ids, b.kinds, b.times, b.leaves,
       e.seq as event_seq, e.cooperative_id, e.kind, e.lot_ids, e.occurred_at, e.payload,
       e.prev_hash, e.hash, e.position, e.signature
from unnest(%(seqs)s::bigint[]) as s (seq)
left join ingest_batches b on b.event_seq = s.seq
left join trace_events e on e.seq = s.seq;

-- name: batches_reading_rows
-- The readings at each (device, time) of a batch's reading sets, through
-- sensor_readings_device_time_idx; `i` is the record's 1-based place in the arrays given.
select u.i, r.plot_id, r.tree_id, r.metric, r.value
from unnest(%(device_ids)s::text[], %(times)s::timestamptz[]) with ordinality as u (device_id, time, i)
join sensor_readings r on r.device_id = u.device_id and r.time = u.time
order by u.i;

-- name: batches_ledger_readings
-- How many readings ingest stored for each (device, key), while the ledger still holds
-- the key (it is pruned after the replay window): only to say what a changed set lost.
select device_id, msg_id, readings
from ingest_messages
where (device_id, msg_id) in (select * from unnest(%(device_ids)s::text[], %(msg_ids)s::text[]));

-- name: batches_harvests_to_seal
-- Harvests without a batch, in the order their leaves are laid out: per cooperative, by
-- time, then id.
select h.*
from harvest_events h
where h.id = any(%(ids)s::uuid[]) and h.batch_seq is null
order by h.cooperative_id, h.time, h.id;

-- name: batches_set_harvest_places
-- Sealed harvests get their batch and leaf index; (id, time) is the table's key.
update harvest_events h
set batch_seq = %(seq)s, batch_index = u.i - 1
from unnest(%(ids)s::uuid[], %(times)s::timestamptz[]) with ordinality as u (id, time, i)
where h.id = u.id and h.time = u.time;

-- name: batches_seqs_of_harvests
select distinct batch_seq from harvest_events
where id = any(%(ids)s::uuid[]) and batch_seq is not null
order by batch_seq;

-- name: batches_unsealed_of_cooperative
-- The next `limit` harvests of a cooperative in no batch, after (time, id), through
-- harvest_events_coop_time_idx.
select id, time from harvest_events
where cooperative_id = %(cooperative_id)s and batch_seq is null
  and (%(after_time)s::timestamptz is null or (time, id) > (%(after_time)s, %(after_id)s::uuid))
order by time, id
limit %(limit)s;
