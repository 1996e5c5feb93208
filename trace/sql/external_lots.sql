-- External lots: lots from outside the platform with an origin claim (migration 0059,
-- trace/external_lots.py, trace/external_origins.py).

-- name: external_insert
insert into external_lots (lot_id, cooperative_id, origin_country, producer, supplier,
                           documents, received_at)
values (%(lot_id)s, %(cooperative_id)s, %(origin_country)s, %(producer)s, %(supplier)s,
        %(documents)s, %(received_at)s)
returning *;

-- name: external_set_event
update external_lots set event_seq = %(seq)s where lot_id = %(lot_id)s;

-- name: external_of_organisation
-- One organisation's external lots with their lot, in keyset pages by lot id (`id`: one).
select e.lot_id as id, l.public_id, l.code, l.kind, l.quantity_kg, l.remaining_kg,
       l.product_id, e.origin_country, e.producer, e.supplier, e.documents, e.received_at,
       e.event_seq, e.created_at
from external_lots e
join lots l on l.id = e.lot_id
where e.cooperative_id = %(cooperative_id)s
  and (%(id)s::uuid is null or e.lot_id = %(id)s::uuid)
  and (%(after)s::uuid is null or e.lot_id > %(after)s::uuid)
  and (%(country)s::text is null or e.origin_country = %(country)s::text)
order by e.lot_id
limit %(limit)s;

-- name: external_shares
-- The external lots among the given lots, each with its fraction of the traced lot.
select x.lot_id, x.frac as share, l.public_id, l.code, l.kind, l.cooperative_id,
       e.origin_country, e.producer, e.supplier, e.documents, e.received_at
from unnest(%(lot_ids)s::uuid[], %(fracs)s::numeric[]) as x(lot_id, frac)
cross join lateral (select * from external_lots where lot_id = x.lot_id offset 0) e
cross join lateral (select public_id, code, kind, cooperative_id from lots
                    where id = x.lot_id offset 0) l
order by x.frac desc, l.public_id;

-- name: external_claims_of_lots
-- Lots made by no transformation (cherry and external lots) with their claim, if any, and
-- the lot_created event that recorded them: verification holds the claim to the event.
select l.id, l.code, l.cooperative_id, l.event_seq as lot_event_seq, e.lot_id as claim_lot_id,
       e.origin_country, e.producer, e.supplier, e.documents, e.received_at,
       e.event_seq as claim_event_seq, ev.seq, ev.kind, ev.payload
from lots l
left join external_lots e on e.lot_id = l.id
left join trace_events ev on ev.seq = coalesce(e.event_seq, l.event_seq)
where l.id = any(%(lot_ids)s::uuid[]) and l.produced_by is null;

-- name: external_lot_ids_of_chain
-- An organisation's external lots, and its lots whose lot_created event claims an external
-- origin (a claim row deleted behind the application's back leaves the event).
select lot_id from external_lots where cooperative_id = %(cooperative_id)s
union
select l.id from lots l
join trace_events ev on ev.seq = l.event_seq
where l.cooperative_id = %(cooperative_id)s and l.produced_by is null
  and ev.kind = 'lot_created' and ev.payload ? 'external';
