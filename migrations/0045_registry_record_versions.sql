-- Registry rollback. A row put back with psql to an older version of its facts, together
-- with that version's event_seq, matches an event of the chain: comparing the row with
-- the event its event_seq names cannot see it. A newer registry event recording the same
-- row can, since the version in force must be the newest. registry_record_versions lists,
-- for every registry event, the rows it records, so verification (trace/
-- registry_versions.py) finds each row's newest version by index instead of reading
-- every registry event's payload (up to 5,000 records each).
--
-- Registry rows' ids are UUIDs (the application writes them; an event recording
-- anything else fails to insert, loudly). Filled by a trigger as registry events are inserted, in the same transaction. It is an
-- index of the chain, not evidence: a lot's verification trusts it, and the chain audit
-- (`coffeetrace verify --coop`) checks it against the events' payloads, so a row deleted
-- here to hide a newer version is named there.
create table registry_record_versions (
    record_id uuid   not null,
    seq       bigint not null,
    primary key (record_id, seq)
);

create function registry_record_versions_add() returns trigger
language plpgsql as $$
begin
    if new.kind = 'registry' and jsonb_typeof(new.payload -> 'records') = 'array' then
        insert into registry_record_versions (record_id, seq)
        select distinct (rec ->> 'id')::uuid, new.seq
        from jsonb_array_elements(new.payload -> 'records') as rec
        where rec ->> 'id' is not null
        on conflict do nothing;
    end if;
    return null;
end
$$;

create trigger trace_events_registry_record_versions
    after insert on trace_events
    for each row execute function registry_record_versions_add();

insert into registry_record_versions (record_id, seq)
select distinct (rec ->> 'id')::uuid, e.seq
from trace_events e, jsonb_array_elements(e.payload -> 'records') as rec
where e.kind = 'registry' and jsonb_typeof(e.payload -> 'records') = 'array'
  and rec ->> 'id' is not null
on conflict do nothing;
