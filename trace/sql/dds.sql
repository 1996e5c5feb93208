-- EUDR due diligence statements (trace/dds.py).

-- name: dds_commodity_plots
-- The plots behind a lot, by the product kind they reach it as: walking up from the lot,
-- blends and packed lots are passed through, and the first lot of another kind on each
-- path (the lot itself when it is one) is the kind of the kilograms on that path; a path
-- through a decaffeination step (%(decaf_steps)s) is decaffeinated. share: the fraction
-- of the lot's kilograms from the plot by that path (as genealogy.sql's upstream_lots
-- multiplies it: input kg / the step's total input kg, then harvest kg / cherry lot kg);
-- the shares of one lot sum to 1. species: the plot's trees' species on those paths.
with recursive up (lot_id, frac, kind, decaf) as (
    select l.id, 1::numeric, case when l.kind in ('blend', 'packed') then null else l.kind end,
           false
    from lots l where l.id = %(lot_id)s
    union all
    select e.lot_id, up.frac * e.kg / e.input_kg,
           coalesce(up.kind, case when e.kind in ('blend', 'packed') then null else e.kind end),
           up.decaf or e.step = any(%(decaf_steps)s::text[])
    from up
    cross join lateral (
        select ti.lot_id, ti.kg, t.input_kg, t.step, il.kind
        from lots l
        join transformations t on t.id = l.produced_by
        join transformation_inputs ti on ti.transformation_id = t.id
        join lots il on il.id = ti.lot_id
        where l.id = up.lot_id
        offset 0) e
), cherry as (
    select up.lot_id, coalesce(up.kind, 'cherry') as kind, up.decaf, sum(up.frac) as frac
    from up
    cross join lateral (select produced_by from lots where id = up.lot_id offset 0) l
    where l.produced_by is null
    group by up.lot_id, coalesce(up.kind, 'cherry'), up.decaf
)
select c.kind, c.decaf, t.plot_id, sum(c.frac * lh.kg / nullif(l.quantity_kg, 0)) as share,
       array_agg(distinct t.species) as species
from cherry c
cross join lateral (select quantity_kg from lots where id = c.lot_id offset 0) l
cross join lateral (select tree_id, kg from lot_harvests where lot_id = c.lot_id offset 0) lh
cross join lateral (select plot_id, species from trees where id = lh.tree_id offset 0) t
group by c.kind, c.decaf, t.plot_id
order by c.kind, c.decaf, t.plot_id;

-- name: dds_plots
-- What a statement says of each plot and its producer: the geometry, the place, and the
-- owner's name with the farm's consent to give it to the authorities (else the
-- cooperative, the producer group, is named).
select p.id, p.code, p.geometry, p.area_ha, p.centroid_lon, p.centroid_lat, p.district,
       p.cooperative_id, f.id as farm_id, f.code as farm_code, f.district as farm_district,
       f.commune, fp.owner_name, coalesce(fp.authority_consent, false) as authority_consent,
       fp.consent_withdrawn_at, c.code as cooperative_code, c.name as cooperative_name,
       c.country, c.province
from plots p
join farms f on f.id = p.farm_id
join cooperatives c on c.id = p.cooperative_id
left join farm_private fp on fp.farm_id = f.id
where p.id = any(%(ids)s::uuid[])
order by p.code, p.id;
