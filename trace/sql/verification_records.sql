-- Rows the chain audit (trace/verification.py verify_chain) compares with the events
-- that recorded them: captured EPCIS events and trading partnerships.

-- name: verify_captured_epcis_events
-- The cooperative's captured events (not those it publishes of its own trail, which the
-- chain holds as the trail itself), keyset-paged by id.
select id, event_id, capture_id, event_type, event_time, action, biz_step, disposition,
       read_point, biz_location, transformation_id, parent_id, epcs, input_epcs,
       output_epcs, any_epcs, epc_classes, input_classes, output_classes, any_classes,
       hash, event
from epcis_events
where cooperative_id = %(cooperative_id)s and id > %(after)s and capture_id is not null
order by id
limit %(limit)s;

-- name: verify_epcis_events_by_ids
-- Recorded events the walk above did not meet (a row whose capture job was deleted has
-- no capture_id): found here, or missing.
select id, event_id, capture_id, event_type, event_time, action, biz_step, disposition,
       read_point, biz_location, transformation_id, parent_id, epcs, input_epcs,
       output_epcs, any_epcs, epc_classes, input_classes, output_classes, any_classes,
       hash, event
from epcis_events
where cooperative_id = %(cooperative_id)s and event_id = any(%(event_ids)s::text[]);

-- name: verify_partnerships_of
-- The partnerships the cooperative is a party to.
select p.id, p.status, p.scopes, p.proposer_id, p.invitee_id, p.proposed_at, p.accepted_at,
       p.declined_at, p.ended_at, eb.code as ended_by_code
from organisation_partners p
left join cooperatives eb on eb.id = p.ended_by
where %(cooperative_id)s::uuid in (p.proposer_id, p.invitee_id);
