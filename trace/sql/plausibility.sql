-- name: lot_trees
-- The trees that fed the lot (any depth upstream), with what the flags need. LATERAL ...
-- OFFSET 0 keeps each step an index lookup from the rows already found (see genealogy.sql).
with recursive up (lot_id) as (
    select %(lot_id)s::uuid
    union
    select e.lot_id from up
    cross join lateral (
        select ti.lot_id from lots l
        join transformation_inputs ti on ti.transformation_id = l.produced_by
        where l.id = up.lot_id
        offset 0) e
)
select t.id as tree_id, t.tag_code, t.cooperative_id, t.lon, t.lat, t.planted_on,
       p.geometry, p.area_ha, p.code as plot_code
from (select distinct lh.tree_id from up
      cross join lateral (select tree_id from lot_harvests where lot_id = up.lot_id offset 0) lh
     ) x
cross join lateral (select * from trees where id = x.tree_id offset 0) t
cross join lateral (select * from plots where id = t.plot_id offset 0) p;

-- name: harvests_before_planting
select h.id as harvest_id, h.time as harvest_time, h.tree_id, t.planted_on
from harvest_events h join trees t on t.id = h.tree_id
where h.tree_id = any(%(tree_ids)s::uuid[]) and t.planted_on is not null
  and h.time < t.planted_on::timestamptz;

-- name: tree_season_totals
-- A season starts on 1 August (picking runs late October to January), named by its
-- starting year. Trees younger than 3 years at the season's start bear little.
select h.tree_id, extract(year from h.time - interval '7 months')::int as season,
       sum(h.cherry_kg) as cherry_kg, count(*) as harvests, t.planted_on
from harvest_events h join trees t on t.id = h.tree_id
where h.tree_id = any(%(tree_ids)s::uuid[])
group by h.tree_id, 2, t.planted_on;

-- name: insert_flag
insert into plausibility_flags (cooperative_id, kind, tree_id, harvest_id, season, details)
values (%(cooperative_id)s, %(kind)s, %(tree_id)s, %(harvest_id)s, %(season)s, %(details)s)
on conflict do nothing;

-- name: flags_for_cooperative
select f.id, f.kind, f.tree_id, t.tag_code, f.harvest_id, f.season, f.details, f.created_at
from plausibility_flags f join trees t on t.id = f.tree_id
where f.cooperative_id = %(cooperative_id)s
order by f.created_at desc, f.id desc
limit %(limit)s;
