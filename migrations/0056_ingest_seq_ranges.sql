-- The idempotency ledger keeps runs of consecutive numeric keys as one row.
--
-- Until now the ledger held one row per reading set: a device's offline buffer of 25 sets
-- made 25 ledger rows beside its 100 readings, and PostgreSQL spent about a seventh of
-- its ingest work on them. Devices number their sets with `seq`, one after the other, so
-- the keys of a batch from one device are nearly always one run: ingest now claims such a
-- run as one row of `ingest_seq_ranges` (device, first and last seq, kind, readings per
-- set). Whether a set is new is still decided per set: two ranges of one device never
-- overlap (the exclusion constraint, which waits on another consumer's uncommitted rows
-- as a unique key does), and a batch that meets a key seen before claims its sets one by
-- one, so that exactly the new ones are stored (ingest/store.py).
--
-- Keys that are not a seq in decimal form (a harvest's `msg_id` such as "h-2025-11-02-7")
-- stay one row each, in the former table, renamed `ingest_text_keys`. A key is a string:
-- seq 17 and msg_id "17" are the same key, as before, and "017" is another one; a text
-- key is a seq key when it is the decimal form of a number up to 2^63 - 2
-- (`ingest_seq_key`, the same rule as ingest/ledger.py; 2^63 - 1, which a seq may be,
-- stays a text key: the range [n, n] of it has no bigint upper bound n + 1).
--
-- `ingest_messages` becomes a view with one row per reading set or event, as the table
-- had: readers (reconciliation, benchmarks, audits with psql) keep their meaning.
create extension if not exists btree_gist;

alter table ingest_messages rename to ingest_text_keys;
alter index ingest_messages_pkey rename to ingest_text_keys_pkey;
alter index ingest_messages_received_idx rename to ingest_text_keys_received_idx;

create function ingest_seq_key(key text) returns bigint
language sql immutable strict parallel safe
as $$
    select case
        when key ~ '^(0|[1-9][0-9]{0,18})$'
             and (length(key) < 19 or key <= '9223372036854775806')
        then key::bigint
    end
$$;

create table ingest_seq_ranges (
    device_id    text not null,
    first_seq    bigint not null,
    last_seq     bigint not null,
    kind         text not null check (kind in ('telemetry', 'harvest', 'status')),
    -- readings[i]: how many readings set first_seq + i - 1 had (1 for a harvest event)
    readings     integer[] not null,
    received_at  timestamptz not null default now(),
    primary key (device_id, first_seq),
    check (first_seq >= 0 and last_seq >= first_seq),
    check (cardinality(readings) = last_seq - first_seq + 1),
    exclude using gist (device_id with =, int8range(first_seq, last_seq, '[]') with &&)
);
create index ingest_seq_ranges_received_idx on ingest_seq_ranges (received_at);

insert into ingest_seq_ranges (device_id, first_seq, last_seq, kind, readings, received_at)
select device_id, ingest_seq_key(msg_id), ingest_seq_key(msg_id), kind, array[readings],
       received_at
from ingest_text_keys
where ingest_seq_key(msg_id) is not null;
delete from ingest_text_keys where ingest_seq_key(msg_id) is not null;

create view ingest_messages as
select device_id, msg_id, kind, readings, received_at
from ingest_text_keys
union all
select r.device_id, s.seq::text, r.kind, r.readings[s.seq - r.first_seq + 1], r.received_at
from ingest_seq_ranges r
cross join lateral generate_series(r.first_seq, r.last_seq) as s (seq);

comment on view ingest_messages is
    'One row per reading set or event that ingest stored (migration 0056): '
    'ingest_text_keys and the expanded runs of ingest_seq_ranges. Read-only.';
