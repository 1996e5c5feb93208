-- Captured EPCIS events joining the trail (trace/epcis_trail.py, migration 0058).

-- name: trail_lots_by_gtin_and_code
-- Lots named by a GS1 Digital Link or LGTIN: their product's GTIN and their code.
select x.ident, l.id as lot_id, l.cooperative_id, l.code, l.kind, l.remaining_kg
from unnest(%(idents)s::text[], %(gtins)s::text[], %(codes)s::text[]) as x(ident, gtin, code)
join products p on p.gtin = x.gtin
join lots l on l.product_id = p.id and l.code = x.code;

-- name: trail_lots_by_public_id
-- Lots named by their public page ({base_url}/l/{public_id}, as the exports write it).
select x.ident, l.id as lot_id, l.cooperative_id, l.code, l.kind, l.remaining_kg
from unnest(%(idents)s::text[], %(public_ids)s::text[]) as x(ident, public_id)
join lots l on l.public_id = x.public_id;

-- name: trail_lots_by_class
-- Lots an earlier captured step made, named by the output class it wrote.
select c.ident, l.id as lot_id, l.cooperative_id, l.code, l.kind, l.remaining_kg
from epcis_trail t
cross join lateral unnest(t.classes, t.lot_ids) as c(ident, lot_id)
join lots l on l.id = c.lot_id
where t.cooperative_id = %(cooperative_id)s and t.kind = 'transformation'
  and t.classes && %(idents)s::text[] and c.ident = any(%(idents)s::text[]);

-- name: trail_held_lots
-- The organisation's lots its receiving steps made of the named lots of others (what it
-- received of them by shipment), with what is left of each.
select i.lot_id as named, l.id as lot_id, l.cooperative_id, l.code, l.kind, l.remaining_kg
from transformation_inputs i
join transformations t on t.id = i.transformation_id
join transformation_outputs o on o.transformation_id = t.id
join lots l on l.id = o.lot_id
where i.lot_id = any(%(lot_ids)s::uuid[]) and t.step = 'receiving'
  and t.cooperative_id = %(cooperative_id)s
order by l.created_at, l.id;

-- name: trail_product_by_gtin
select id from products where cooperative_id = %(cooperative_id)s and gtin = %(gtin)s;

-- name: trail_organisations_by_gln
select id, code, gln from cooperatives where gln = any(%(glns)s::text[]);

-- name: trail_organisations_by_code
select id, code, gln from cooperatives where code = any(%(codes)s::text[]);

-- name: trail_shipments_in_transit
-- Shipments in transit from %(sender_id)s (any sender when null) to the organisation that
-- carry one of the lots, with the lots of their lines, oldest first.
select s.id, s.sender_id, s.sale_type, s.sale_id, s.departed_at,
       array_agg(sl.lot_id order by sl.line_no) as lot_ids
from shipments s
join shipment_lines sl on sl.shipment_id = s.id
where s.receiver_id = %(receiver_id)s and s.status = 'in_transit'
  and (%(sender_id)s::uuid is null or s.sender_id = %(sender_id)s::uuid)
  and exists (select 1 from shipment_lines x
              where x.shipment_id = s.id and x.lot_id = any(%(lot_ids)s::uuid[]))
group by s.id
order by s.departed_at, s.id;

-- name: trail_drop_events
-- Captured events the trail refused (error behaviour proceed): not captured after all.
delete from epcis_events
where cooperative_id = %(cooperative_id)s and event_id = any(%(event_ids)s::text[]);

-- name: trail_insert
insert into epcis_trail (cooperative_id, event_id, capture_id, kind, transformation_id,
                         shipment_id, lot_ids, classes, chain_seq)
select %(cooperative_id)s, r.event_id, %(capture_id)s, r.kind, r.transformation_id,
       r.shipment_id, r.lot_ids, r.classes, %(chain_seq)s
from jsonb_to_recordset(%(rows)s::jsonb) as r(event_id text, kind text,
     transformation_id uuid, shipment_id uuid, lot_ids uuid[], classes text[]);

-- name: trail_made_transformations
-- The transformations the organisation's captured events made (their steps, and the
-- receiving steps of the shipments they accepted): its own EPCIS trail would repeat them.
select t.transformation_id as id
from epcis_trail t
where t.cooperative_id = %(cooperative_id)s and t.transformation_id = any(%(ids)s::uuid[])
union
select l.produced_by
from epcis_trail t
join shipment_lines sl on sl.shipment_id = t.shipment_id
join lots l on l.id = sl.receiver_lot_id
where t.cooperative_id = %(cooperative_id)s and t.kind = 'shipment_accepted'
  and l.produced_by = any(%(ids)s::uuid[]);

-- name: trail_observations_of_lots
-- The captured events with sensor data on the lots (their EPCIS export lists them).
select e.event, e.event_time, e.event_id
from epcis_trail t
join epcis_events e on e.cooperative_id = t.cooperative_id and e.event_id = t.event_id
where t.kind = 'observation' and t.lot_ids && %(lot_ids)s::uuid[]
order by e.event_time, e.event_id
limit %(limit)s;

-- name: trail_rows_of
-- The organisation's trail rows, keyset-paged (the chain audit).
select id, event_id, kind, transformation_id, shipment_id, lot_ids, classes, chain_seq
from epcis_trail
where cooperative_id = %(cooperative_id)s and id > %(after)s
order by id
limit %(limit)s;
