-- name: lot_brief
select id, code, public_id, cooperative_id from lots where id = %(id)s;

-- name: lock_harvests
-- Cherry lots of one cooperative are built one at a time, so a harvest's remainder is
-- read and consumed without a race; released at commit.
select pg_advisory_xact_lock(hashtextextended('coffeetrace.harvests:' || %(cooperative_id)s::text, 0));

-- name: harvests_by_ids
select h.id as harvest_id, h.time as harvest_time, h.tree_id, h.cherry_kg,
       h.cherry_kg - coalesce((select sum(lh.kg) from lot_harvests lh
                               where lh.harvest_id = h.id), 0) as remaining_kg
from harvest_events h
where h.cooperative_id = %(cooperative_id)s and h.id = any(%(ids)s::uuid[])
order by h.time, h.id;

-- name: harvests_by_selection
select h.id as harvest_id, h.time as harvest_time, h.tree_id, h.cherry_kg,
       h.cherry_kg - coalesce((select sum(lh.kg) from lot_harvests lh
                               where lh.harvest_id = h.id), 0) as remaining_kg
from harvest_events h
where h.cooperative_id = %(cooperative_id)s
  and (h.tree_id = any(%(tree_ids)s::uuid[]) or h.plot_id = any(%(plot_ids)s::uuid[])
       or h.farm_id = any(%(farm_ids)s::uuid[]))
  and (%(since)s::timestamptz is null or h.time >= %(since)s::timestamptz)
  and (%(until)s::timestamptz is null or h.time < %(until)s::timestamptz)
order by h.time, h.id;

-- name: product_of_cooperative
select id, kind, gtin from products where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: insert_lot
insert into lots (public_id, cooperative_id, code, product_id, kind, quantity_kg, remaining_kg,
                  produced_by, harvest_from, harvest_to, cherry_equiv_kg)
values (%(public_id)s, %(cooperative_id)s, %(code)s, %(product_id)s, %(kind)s, %(quantity_kg)s,
        %(quantity_kg)s, %(produced_by)s, %(harvest_from)s, %(harvest_to)s, %(cherry_equiv_kg)s)
returning id;

-- name: insert_lot_harvests
insert into lot_harvests (lot_id, harvest_id, harvest_time, tree_id, kg)
select %(lot_id)s, h.harvest_id, h.harvest_time, h.tree_id, h.kg
from unnest(%(harvest_ids)s::uuid[], %(times)s::timestamptz[], %(tree_ids)s::uuid[],
            %(kgs)s::numeric[]) as h(harvest_id, harvest_time, tree_id, kg);

-- name: set_lot_event
update lots set event_seq = %(seq)s where id = %(id)s;

-- name: harvest_rows_by_ids
-- The harvests as ingest stored them, for the leaf each contributes to its batch's root.
select * from harvest_events where id = any(%(ids)s::uuid[]);
