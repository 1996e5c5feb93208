-- Shipments between trading partners (shipments, shipment_lines,
-- shipment_transport_events: migration 0053). Every read names the organisation asking
-- (%(viewer)s): a shipment it neither sent nor receives is never found.

-- name: shipment_insert
insert into shipments (sender_id, receiver_id, departed_at, departure_place, carrier, vehicle,
                       container, seal, documents, sale_type, sale_id, shipped_kg)
values (%(sender_id)s, %(receiver_id)s, %(departed_at)s, %(departure_place)s, %(carrier)s,
        %(vehicle)s, %(container)s, %(seal)s, %(documents)s, %(sale_type)s, %(sale_id)s,
        %(shipped_kg)s)
returning id;

-- name: shipment_lines_insert
insert into shipment_lines (shipment_id, line_no, lot_id, kg)
select %(shipment_id)s, x.line_no, x.lot_id, x.kg
from unnest(%(line_nos)s::integer[], %(lot_ids)s::uuid[], %(kgs)s::numeric[])
     as x(line_no, lot_id, kg);

-- name: shipment_set_sent_event
update shipments set sent_event_seq = %(seq)s where id = %(id)s;

-- name: shipment_lock
-- The shipment for a change by %(viewer)s (its sender or its receiver), locked until the
-- transaction ends: accepting, rejecting and following it queue on this row.
select s.*, sc.code as sender_code, rc.code as receiver_code
from shipments s
join cooperatives sc on sc.id = s.sender_id
join cooperatives rc on rc.id = s.receiver_id
where s.id = %(id)s and %(viewer)s::uuid in (s.sender_id, s.receiver_id)
for update of s;

-- name: shipment_row
-- One shipment with the codes of both parties, unlocked (the payloads of its events are
-- built from this row: trace/shipments.py and trace/shipment_checks.py read it alike).
select s.*, sc.code as sender_code, rc.code as receiver_code
from shipments s
join cooperatives sc on sc.id = s.sender_id
join cooperatives rc on rc.id = s.receiver_id
where s.id = %(id)s;

-- name: shipment_lines_of
-- The lines of the shipments with each sender lot's identity and what the receiver made of
-- it, by shipment and line.
select sl.shipment_id, sl.line_no, sl.lot_id, sl.kg, sl.received_kg, sl.measurements,
       sl.loss_flagged, sl.receiver_lot_id,
       l.public_id, l.code, l.kind, l.quantity_kg, l.cherry_equiv_kg, l.harvest_from,
       l.harvest_to, l.cooperative_id as lot_cooperative_id,
       rl.public_id as receiver_lot_public_id, rl.code as receiver_lot_code
from shipment_lines sl
join lots l on l.id = sl.lot_id
left join lots rl on rl.id = sl.receiver_lot_id
where sl.shipment_id = any(%(ids)s::uuid[])
order by sl.shipment_id, sl.line_no;

-- name: shipment_transport_of
select t.*, c.code as recorded_by_code
from shipment_transport_events t
join cooperatives c on c.id = t.recorded_by
where t.shipment_id = any(%(ids)s::uuid[])
order by t.shipment_id, t.occurred_at, t.id;

-- name: shipments_of
-- The shipments %(viewer)s sent (direction 'out') or receives ('in'), or both (null), by id
-- (keyset pages: `after` = the last id of the previous page); only %(id)s when given, only
-- those in %(status)s when given. Each with both parties' public profiles.
select s.*, sc.code as sender_code, rc.code as receiver_code,
       jsonb_build_object('code', so.code, 'public_name', so.public_name,
                          'country', so.country) as sender,
       jsonb_build_object('code', ro.code, 'public_name', ro.public_name,
                          'country', ro.country) as receiver
from shipments s
join cooperatives sc on sc.id = s.sender_id
join cooperatives rc on rc.id = s.receiver_id
join organisations so on so.id = s.sender_id
join organisations ro on ro.id = s.receiver_id
where ((%(direction)s::text is distinct from 'in' and s.sender_id = %(viewer)s::uuid)
       or (%(direction)s::text is distinct from 'out' and s.receiver_id = %(viewer)s::uuid))
  and (%(id)s::uuid is null or s.id = %(id)s::uuid)
  and (%(status)s::text is null or s.status = %(status)s::text)
  and (%(after)s::uuid is null or s.id > %(after)s::uuid)
order by s.id
limit %(limit)s;

-- name: shipment_accept
update shipments
set status = 'accepted', received_at = %(received_at)s, arrival_place = %(arrival_place)s,
    received_kg = %(received_kg)s, receipt_measurements = %(measurements)s,
    receipt_documents = %(documents)s, loss_tolerance_pct = %(loss_tolerance_pct)s,
    loss_flagged = %(loss_flagged)s
where id = %(id)s and status = 'in_transit';

-- name: shipment_lines_receive
update shipment_lines sl
set received_kg = x.received_kg, measurements = x.measurements,
    loss_flagged = x.loss_flagged, receiver_lot_id = x.receiver_lot_id
from unnest(%(line_nos)s::integer[], %(received_kgs)s::numeric[], %(measurements)s::jsonb[],
            %(flags)s::boolean[], %(receiver_lot_ids)s::uuid[])
     as x(line_no, received_kg, measurements, loss_flagged, receiver_lot_id)
where sl.shipment_id = %(id)s and sl.line_no = x.line_no;

-- name: shipment_reject
update shipments set status = 'rejected', rejected_at = now(), reject_reason = %(reason)s
where id = %(id)s and status = 'in_transit'
returning rejected_at;

-- name: shipment_set_outcome_events
update shipments
set outcome_event_seq = %(seq)s, sender_outcome_event_seq = %(sender_seq)s
where id = %(id)s;

-- name: lot_return
-- A rejected shipment's kg back into the sender's lot (locked by the caller).
update lots set remaining_kg = remaining_kg + %(kg)s
where id = %(id)s and cooperative_id = %(cooperative_id)s
  and remaining_kg + %(kg)s <= quantity_kg;

-- name: transport_event_insert
insert into shipment_transport_events (shipment_id, recorded_by, kind, occurred_at, place,
                                       note)
values (%(shipment_id)s, %(recorded_by)s, %(kind)s, %(occurred_at)s, %(place)s, %(note)s)
returning id;

-- name: transport_event_set_event
update shipment_transport_events set event_seq = %(seq)s where id = %(id)s;

-- name: event_by_seq
select seq, cooperative_id, kind, hash from trace_events where seq = %(seq)s;
