-- What trace/shipment_checks.py holds against the chains: the shipments of an organisation
-- or of lots, and the shipment events of a chain or at given seqs.

-- name: shipment_events_of_chain
-- The organisation's shipment events, through its (cooperative_id, seq) index.
select * from trace_events
where cooperative_id = %(cooperative_id)s and kind = any(%(kinds)s::text[])
order by seq;

-- name: shipment_events_at
select * from trace_events where seq = any(%(seqs)s::bigint[]) order by seq;

-- name: shipment_ids_of_organisation
select id from shipments
where sender_id = %(cooperative_id)s or receiver_id = %(cooperative_id)s
order by id;

-- name: shipment_ids_of_lots
-- The shipments that took kg of the lots, or made them.
select distinct shipment_id as id from shipment_lines
where lot_id = any(%(lot_ids)s::uuid[]) or receiver_lot_id = any(%(lot_ids)s::uuid[])
order by 1;

-- name: shipment_rows_by_ids
select s.*, sc.code as sender_code, rc.code as receiver_code
from shipments s
join cooperatives sc on sc.id = s.sender_id
join cooperatives rc on rc.id = s.receiver_id
where s.id = any(%(ids)s::uuid[])
order by s.id;

-- name: organisation_codes
select id, code from cooperatives where id = any(%(ids)s::uuid[]);
