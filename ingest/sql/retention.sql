-- name: prune_ledger_seq_ranges
-- One bounded batch of ledger rows older than the window. SKIP LOCKED: several ingest
-- processes may prune at the same time without waiting on each other.
with old as (
    select device_id, first_seq
    from ingest_seq_ranges
    where received_at < %(before)s
    order by received_at
    limit %(batch)s
    for update skip locked
)
delete from ingest_seq_ranges r
using old
where r.device_id = old.device_id and r.first_seq = old.first_seq;

-- name: prune_ledger_text_keys
with old as (
    select device_id, msg_id
    from ingest_text_keys
    where received_at < %(before)s
    order by received_at
    limit %(batch)s
    for update skip locked
)
delete from ingest_text_keys m
using old
where m.device_id = old.device_id and m.msg_id = old.msg_id;


-- name: prune_dead_letters
-- One bounded batch of dead letters older than the window (their own retention setting).
with old as (
    select id from dead_letters
    where received_at < %(before)s
    order by received_at
    limit %(batch)s
    for update skip locked
)
delete from dead_letters d using old where d.id = old.id;

-- name: prune_dead_letter_hours
delete from dead_letter_hours where hour < %(before)s;
