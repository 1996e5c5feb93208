-- EPCIS capture jobs and captured events (trace/epcis_capture.py, trace/epcis_query.py).
-- Every query names its tenant (cooperative_id): a tenant never reads another's rows.

-- name: epcis_insert_capture
insert into epcis_captures (cooperative_id, api_key_id, error_behaviour, document, event_count)
values (%(cooperative_id)s, %(api_key_id)s, %(error_behaviour)s, %(document)s, %(event_count)s)
returning id, cooperative_id, error_behaviour, state, success, event_count, errors,
          created_at, finished_at;

-- name: epcis_claim_capture
-- The oldest pending job no other worker holds; locked until the caller's transaction
-- ends, so a worker that dies leaves it pending for the next.
select id, cooperative_id, error_behaviour, document, event_count, created_at
from epcis_captures
where state = 'pending'
order by created_at, id
limit 1
for update skip locked;

-- name: epcis_finish_capture
update epcis_captures
set state = 'done', success = %(success)s, errors = %(errors)s, stored_count = %(stored)s,
    known_count = %(known)s, chain_seq = %(chain_seq)s, document = null, finished_at = now()
where id = %(id)s;

-- name: epcis_capture_job
select id, error_behaviour, state, success, errors, created_at, finished_at
from epcis_captures
where cooperative_id = %(cooperative_id)s and id = %(id)s;

-- name: epcis_capture_jobs
-- Newest first, keyset-paged on (created_at, id).
select id, error_behaviour, state, success, errors, created_at, finished_at
from epcis_captures
where cooperative_id = %(cooperative_id)s
  and (%(before_time)s::timestamptz is null
       or (created_at, id) < (%(before_time)s::timestamptz, %(before_id)s::uuid))
order by created_at desc, id desc
limit %(limit)s;

-- name: epcis_insert_events
-- One chunk of a capture's events; an eventID the tenant already has is not stored again
-- (nor a second time within the chunk). Returns the rows stored.
insert into epcis_events (cooperative_id, event_id, capture_id, event_type, event_time,
                          action, biz_step, disposition, read_point, biz_location,
                          transformation_id, parent_id, epcs, input_epcs, output_epcs,
                          any_epcs, epc_classes, input_classes, output_classes, any_classes,
                          hash, event)
select %(cooperative_id)s, r.event_id, %(capture_id)s, r.event_type, r.event_time,
       r.action, r.biz_step, r.disposition, r.read_point, r.biz_location,
       r.transformation_id, r.parent_id, r.epcs, r.input_epcs, r.output_epcs,
       r.any_epcs, r.epc_classes, r.input_classes, r.output_classes, r.any_classes,
       r.hash, r.event
from jsonb_to_recordset(%(rows)s::jsonb) as r(
    event_id text, event_type text, event_time timestamptz, action text, biz_step text,
    disposition text, read_point text, biz_location text, transformation_id text,
    parent_id text, epcs text[], input_epcs text[], output_epcs text[], any_epcs text[],
    epc_classes text[], input_classes text[], output_classes text[], any_classes text[],
    hash text, event jsonb)
on conflict (cooperative_id, event_id) do nothing
returning event_id, hash;

-- name: epcis_events_page
-- One page of GET /epcis/events. Each filter is off when its parameter is null. The sort
-- column and direction are parameters too: run unprepared (custom plans), the planner
-- folds the CASEs to the plain column, so the keyset condition and the order are those of
-- epcis_events_time_idx / epcis_events_record_idx, and the MATCH_ arrays use the GIN
-- indexes on any_epcs / any_classes.
select e.id, e.event, e.record_time, e.event_time
from epcis_events e
where e.cooperative_id = %(cooperative_id)s
  and (%(event_types)s::text[] is null or e.event_type = any(%(event_types)s::text[]))
  and (%(ge_event_time)s::timestamptz is null or e.event_time >= %(ge_event_time)s::timestamptz)
  and (%(lt_event_time)s::timestamptz is null or e.event_time < %(lt_event_time)s::timestamptz)
  and (%(ge_record_time)s::timestamptz is null
       or e.record_time >= %(ge_record_time)s::timestamptz)
  and (%(lt_record_time)s::timestamptz is null
       or e.record_time < %(lt_record_time)s::timestamptz)
  and (%(actions)s::text[] is null or e.action = any(%(actions)s::text[]))
  and (%(biz_steps)s::text[] is null or e.biz_step = any(%(biz_steps)s::text[]))
  and (%(dispositions)s::text[] is null or e.disposition = any(%(dispositions)s::text[]))
  and (%(read_points)s::text[] is null or e.read_point = any(%(read_points)s::text[]))
  and (%(biz_locations)s::text[] is null or e.biz_location = any(%(biz_locations)s::text[]))
  and (%(transformation_ids)s::text[] is null
       or e.transformation_id = any(%(transformation_ids)s::text[]))
  and (%(event_ids)s::text[] is null or e.event_id = any(%(event_ids)s::text[]))
  and (%(match_epc)s::text[] is null
       or (e.any_epcs && %(match_epc)s::text[] and e.epcs && %(match_epc)s::text[]))
  and (%(match_parent_id)s::text[] is null
       or (e.any_epcs && %(match_parent_id)s::text[]
           and e.parent_id = any(%(match_parent_id)s::text[])))
  and (%(match_input_epc)s::text[] is null
       or (e.any_epcs && %(match_input_epc)s::text[]
           and e.input_epcs && %(match_input_epc)s::text[]))
  and (%(match_output_epc)s::text[] is null
       or (e.any_epcs && %(match_output_epc)s::text[]
           and e.output_epcs && %(match_output_epc)s::text[]))
  and (%(match_any_epc)s::text[] is null or e.any_epcs && %(match_any_epc)s::text[])
  and (%(match_epc_class)s::text[] is null
       or (e.any_classes && %(match_epc_class)s::text[]
           and e.epc_classes && %(match_epc_class)s::text[]))
  and (%(match_input_epc_class)s::text[] is null
       or (e.any_classes && %(match_input_epc_class)s::text[]
           and e.input_classes && %(match_input_epc_class)s::text[]))
  and (%(match_output_epc_class)s::text[] is null
       or (e.any_classes && %(match_output_epc_class)s::text[]
           and e.output_classes && %(match_output_epc_class)s::text[]))
  and (%(match_any_epc_class)s::text[] is null
       or e.any_classes && %(match_any_epc_class)s::text[])
  and (%(after_time)s::timestamptz is null
       or case when %(descending)s::boolean
               then (case when %(by_record_time)s::boolean then e.record_time else e.event_time end,
                     e.id) < (%(after_time)s::timestamptz, %(after_id)s::bigint)
               else (case when %(by_record_time)s::boolean then e.record_time else e.event_time end,
                     e.id) > (%(after_time)s::timestamptz, %(after_id)s::bigint)
          end)
order by
    case when not %(descending)s::boolean and %(by_record_time)s::boolean then e.record_time end,
    case when not %(descending)s::boolean and not %(by_record_time)s::boolean
         then e.event_time end,
    case when not %(descending)s::boolean then e.id end,
    case when %(descending)s::boolean and %(by_record_time)s::boolean then e.record_time end desc,
    case when %(descending)s::boolean and not %(by_record_time)s::boolean
         then e.event_time end desc,
    case when %(descending)s::boolean then e.id end desc
limit %(limit)s;

-- name: epcis_event_by_id
select e.id, e.event, e.record_time, e.event_time
from epcis_events e
where e.cooperative_id = %(cooperative_id)s and e.event_id = %(event_id)s;

-- name: epcis_own_enrol
-- A cooperative's first EPCIS query: from now on its trail is published (from the start).
insert into epcis_own_marks (cooperative_id, chain_seq)
values (%(cooperative_id)s, 0)
on conflict (cooperative_id) do nothing
returning cooperative_id;

-- name: epcis_own_due
-- Enrolled cooperatives whose chain grew since their events were last published.
select m.cooperative_id
from epcis_own_marks m
where exists (select 1 from trace_events e
              where e.cooperative_id = m.cooperative_id and e.seq > m.chain_seq)
order by m.cooperative_id;

-- name: epcis_own_lock
-- One publisher per cooperative at a time (any API process); released at commit.
select pg_try_advisory_xact_lock(
    hashtextextended('coffeetrace.epcis_own:' || %(cooperative_id)s::text, 0)) as locked;

-- name: epcis_own_changes
-- The next chain events after the cooperative's mark, with the lots each names.
select e.seq, e.lot_ids
from trace_events e
join epcis_own_marks m on m.cooperative_id = e.cooperative_id
where e.cooperative_id = %(cooperative_id)s and e.seq > m.chain_seq
order by e.seq
limit %(limit)s;

-- name: epcis_own_cherry_lots
select l.id from lots l where l.id = any(%(ids)s::uuid[]) and l.produced_by is null;

-- name: epcis_set_own_mark
update epcis_own_marks set chain_seq = %(chain_seq)s where cooperative_id = %(cooperative_id)s;
