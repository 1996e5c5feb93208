-- Every walk below starts from the answer's own rows and reaches the next rows through
-- an index. The joins are written as LATERAL subqueries with OFFSET 0: the planner may
-- not flatten them, so it cannot switch to hash joins over whole tables when its guess
-- of a recursive query's size is off; the cost then follows the answer, not the store.

-- name: upstream_lots
-- Walk from the lot to its inputs, their inputs, ... Each edge multiplies the fraction by
-- input kg / the step's total input kg.
with recursive up (lot_id, frac, depth) as (
    select %(lot_id)s::uuid, 1::numeric, 0
    union all
    select e.lot_id, up.frac * e.kg / e.input_kg, up.depth + 1
    from up
    cross join lateral (
        select ti.lot_id, ti.kg, t.input_kg
        from lots l
        join transformations t on t.id = l.produced_by
        join transformation_inputs ti on ti.transformation_id = t.id
        where l.id = up.lot_id
        offset 0) e
)
select u.lot_id, u.share, u.depth, l.public_id, l.code, l.kind, l.quantity_kg, l.produced_by,
       l.cooperative_id
from (select lot_id, sum(frac) as share, min(depth) as depth from up group by lot_id) u
cross join lateral (select * from lots where id = u.lot_id offset 0) l
order by u.depth, l.code;

-- name: upstream_lot_ids
with recursive up (lot_id) as (
    select %(lot_id)s::uuid
    union
    select e.lot_id
    from up
    cross join lateral (
        select ti.lot_id from lots l
        join transformation_inputs ti on ti.transformation_id = l.produced_by
        where l.id = up.lot_id
        offset 0) e
)
select lot_id from up;

-- name: harvests_of_cherry_lots
-- The harvests of the given cherry lots, each with its share of the traced lot.
select lh.lot_id, lh.harvest_id, lh.harvest_time, lh.kg, lh.tree_id,
       x.frac * lh.kg / l.quantity_kg as share,
       t.public_id as tree_public_id, t.tag_code, t.plot_id,
       p.code as plot_code, p.farm_id, p.area_ha, f.code as farm_code
from unnest(%(lot_ids)s::uuid[], %(fracs)s::numeric[]) as x(lot_id, frac)
cross join lateral (select quantity_kg from lots where id = x.lot_id offset 0) l
cross join lateral (select * from lot_harvests where lot_id = x.lot_id offset 0) lh
cross join lateral (select public_id, tag_code, plot_id from trees
                    where id = lh.tree_id offset 0) t
cross join lateral (select code, farm_id, area_ha from plots where id = t.plot_id offset 0) p
cross join lateral (select code from farms where id = p.farm_id offset 0) f;

-- name: transformations_by_ids
select id, step, occurred_at, place from transformations where id = any(%(ids)s::uuid[])
order by occurred_at, id;

-- name: downstream_lots
-- Start fractions: the share of each starting lot that comes from the source; then each
-- edge into an output lot multiplies by input kg / the step's total input kg.
with recursive down (lot_id, frac, depth) as (
    select s.lot_id, s.frac, 0
    from unnest(%(lot_ids)s::uuid[], %(fracs)s::numeric[]) as s(lot_id, frac)
    union all
    select e.lot_id, down.frac * e.kg / e.input_kg, down.depth + 1
    from down
    cross join lateral (
        select o.lot_id, ti.kg, t.input_kg
        from transformation_inputs ti
        join transformations t on t.id = ti.transformation_id
        join transformation_outputs o on o.transformation_id = t.id
        where ti.lot_id = down.lot_id
        offset 0) e
)
select d.lot_id, d.share, d.depth, l.public_id, l.code, l.kind, l.quantity_kg,
       l.cooperative_id, used.lot_id is null as terminal
from (select lot_id, sum(frac) as share, min(depth) as depth from down group by lot_id) d
cross join lateral (select * from lots where id = d.lot_id offset 0) l
left join lateral (select ti.lot_id from transformation_inputs ti
                   where ti.lot_id = d.lot_id limit 1) used on true
order by d.depth, l.code;

-- name: cherry_lots_of_trees
-- Cherry lots fed by the trees, with the fraction of each lot coming from them.
select lh.lot_id, lh.kg / l.quantity_kg as frac
from (select lot_id, sum(kg) as kg from lot_harvests
      where tree_id = any(%(tree_ids)s::uuid[]) group by lot_id) lh
cross join lateral (select quantity_kg from lots where id = lh.lot_id offset 0) l;

-- name: trees_of_plots
select id from trees where plot_id = any(%(plot_ids)s::uuid[]);

-- name: trees_of_farm
select t.id from plots p join trees t on t.plot_id = p.id where p.farm_id = %(farm_id)s;
