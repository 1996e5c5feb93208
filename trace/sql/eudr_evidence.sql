-- EUDR evidence of no deforestation per plot, and a lot's readiness (trace/eudr_evidence.py,
-- trace/eudr_readiness.py).

-- name: lot_plots
-- The plots whose trees fed the lot (any depth upstream), with what readiness reads of
-- them. LATERAL ... OFFSET 0 keeps each step an index lookup (see genealogy.sql).
with recursive up (lot_id) as (
    select %(lot_id)s::uuid
    union
    select e.lot_id from up
    cross join lateral (
        select ti.lot_id from lots l
        join transformation_inputs ti on ti.transformation_id = l.produced_by
        where l.id = up.lot_id
        offset 0) e
), plot_ids as (
    select distinct t.plot_id
    from up
    cross join lateral (select tree_id from lot_harvests where lot_id = up.lot_id offset 0) lh
    cross join lateral (select plot_id from trees where id = lh.tree_id offset 0) t
)
select p.id, p.code, p.cooperative_id, p.geometry, p.area_ha, p.centroid_lon, p.centroid_lat,
       f.code as farm_code
from plot_ids x
join plots p on p.id = x.plot_id
join farms f on f.id = p.farm_id
order by p.code, p.id;

-- name: lot_plot_seasons
-- The lot's cherry kg per plot and season: the harvests of its upstream cherry lots, by
-- the plot of their tree. A season starts on 1 August, named by its starting year (as
-- plausibility.sql's tree_season_totals).
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
select t.plot_id, extract(year from lh.harvest_time - interval '7 months')::int as season,
       sum(lh.kg) as cherry_kg
from up
cross join lateral (
    select tree_id, kg, harvest_time from lot_harvests where lot_id = up.lot_id offset 0) lh
cross join lateral (select plot_id from trees where id = lh.tree_id offset 0) t
group by t.plot_id, 2
order by t.plot_id, 2;

-- name: plot_tree_planting
-- Per plot: its trees, how many were planted on or before the cut-off, after it, or on a
-- date nobody recorded, and the earliest planting date.
select plot_id, count(*) as trees,
       count(*) filter (where planted_on <= %(cutoff)s::date) as planted_by_cutoff,
       count(*) filter (where planted_on > %(cutoff)s::date) as planted_after_cutoff,
       count(*) filter (where planted_on is null) as planting_unknown,
       min(planted_on) as earliest_planted_on
from trees
where plot_id = any(%(plot_ids)s::uuid[])
group by plot_id;

-- name: latest_screenings
-- The newest screening of each plot (by analysis date, then recording).
select distinct on (plot_id) *
from plot_screenings
where plot_id = any(%(plot_ids)s::uuid[])
order by plot_id, analysis_date desc, recorded_at desc, id desc;

-- name: plot_screenings
select * from plot_screenings
where plot_id = %(plot_id)s and cooperative_id = %(cooperative_id)s
order by analysis_date desc, recorded_at desc, id desc;

-- name: own_plot
select id, code from plots where id = %(plot_id)s and cooperative_id = %(cooperative_id)s;

-- name: plots_by_code_or_id
-- The cooperative's plots named by code or id (a file names a plot as the cooperative
-- knows it).
select id, code from plots
where cooperative_id = %(cooperative_id)s
  and (code = any(%(codes)s::text[]) or id::text = any(%(codes)s::text[]));

-- name: insert_screening
insert into plot_screenings (
    cooperative_id, plot_id, risk, source_category, source, analysis_id, analysis_date, note,
    mitigation_note, land_use_note, recorded_by)
values (
    %(cooperative_id)s, %(plot_id)s, %(risk)s, %(source_category)s, %(source)s,
    %(analysis_id)s, %(analysis_date)s, %(note)s, %(mitigation_note)s, %(land_use_note)s,
    %(recorded_by)s)
returning *;

-- name: set_screening_seq
update plot_screenings set event_seq = %(seq)s where id = any(%(ids)s::uuid[]);

-- name: screenings_of_cooperative
select * from plot_screenings where cooperative_id = %(cooperative_id)s order by id;

-- name: lot_cooperative
select cooperative_id from lots where id = %(lot_id)s;
