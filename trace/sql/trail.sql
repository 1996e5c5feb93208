-- One trail across organisations (trace/trail.py): who owns which row of a trace, what
-- each upstream organisation granted the partner it shipped to, and the shipments the kg
-- crossed by.

-- name: organisation_names
select id, code, public_name from organisations where id = any(%(ids)s::uuid[]);

-- name: event_owners
select seq, cooperative_id from trace_events where seq = any(%(seqs)s::bigint[]);

-- name: lot_owners
select id, cooperative_id from lots where id = any(%(ids)s::uuid[]);

-- name: registry_of_trace
-- The trees, plots and farms of a trace with their owners and what a partner may be shown
-- of them (plot geometry only under eudr_geolocation, decided by the caller).
select 'tree' as type, t.id, t.cooperative_id, null::jsonb as geometry, null::text as district
from trees t where t.id = any(%(trees)s::uuid[])
union all
select 'plot', p.id, p.cooperative_id, p.geometry, p.district
from plots p where p.id = any(%(plots)s::uuid[])
union all
select 'farm', f.id, f.cooperative_id, null, f.district
from farms f where f.id = any(%(farms)s::uuid[]);

-- name: shipments_into_lots
-- The shipment lines whose receipt made one of the lots: sender, receiver, the shipment
-- and the lot the kg left.
select sl.shipment_id, sl.lot_id, sl.kg, sl.receiver_lot_id, s.sender_id, s.receiver_id,
       s.departed_at, s.received_at
from shipment_lines sl
join shipments s on s.id = sl.shipment_id
where sl.receiver_lot_id = any(%(lot_ids)s::uuid[])
order by s.departed_at, sl.shipment_id, sl.line_no;

-- name: edges_between_lots
-- The steps' edges (input lot -> output lot) among the given lots.
select ti.lot_id as from_lot, o.lot_id as to_lot
from transformation_inputs ti
join transformation_outputs o on o.transformation_id = ti.transformation_id
where ti.lot_id = any(%(lot_ids)s::uuid[]) and o.lot_id = any(%(lot_ids)s::uuid[]);
