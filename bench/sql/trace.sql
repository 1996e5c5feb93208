-- Bulk loading for `coffeetrace bench trace` (bench/trace.py): a store of N trees with one harvest each,
-- background lots of 100 trees each with a drying step, built set-wise in the server.

-- name: bench_trace_farms
create temp table bench_farm as
select i, gen_random_uuid() as id from generate_series(1, %(farms)s) as i;
insert into farms (id, cooperative_id, code)
select id, %(cooperative_id)s, 'BF-' || i from bench_farm;

-- name: bench_trace_plots
create temp table bench_plot as
select i, gen_random_uuid() as id, (i - 1) / %(plots_per_farm)s + 1 as farm_i,
       108.0 + ((i - 1) %% 400) * 0.002 as lon, 12.0 + ((i - 1) / 400) * 0.002 as lat
from generate_series(1, %(plots)s) as i;
insert into plots (id, cooperative_id, farm_id, code, geometry, area_ha, centroid_lon,
                   centroid_lat)
select p.id, %(cooperative_id)s, f.id, 'BP-' || p.i,
       jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(jsonb_build_array(
           jsonb_build_array(p.lon, p.lat), jsonb_build_array(p.lon + 0.001, p.lat),
           jsonb_build_array(p.lon + 0.001, p.lat + 0.001), jsonb_build_array(p.lon, p.lat + 0.001),
           jsonb_build_array(p.lon, p.lat)))),
       1.0, p.lon + 0.0005, p.lat + 0.0005
from bench_plot p join bench_farm f on f.i = p.farm_i;

-- name: bench_trace_trees
create temp table bench_tree as
select i, gen_random_uuid() as id, gen_random_uuid() as harvest_id,
       (i - 1) / %(trees_per_plot)s + 1 as plot_i
from generate_series(1, %(trees)s) as i;
insert into trees (id, public_id, tag_code, cooperative_id, plot_id, planted_on)
select t.id, md5(t.id::text), 'T-' || t.i, %(cooperative_id)s, p.id, date '2015-06-01'
from bench_tree t join bench_plot p on p.i = t.plot_i;

-- name: bench_trace_harvests
insert into harvest_events (id, time, device_id, msg_id, cooperative_id, farm_id, plot_id,
                            tree_id, cherry_kg)
select t.harvest_id, timestamptz '2025-11-01 00:00+00' + (t.i %% 40000) * interval '1 minute',
       'bench-scale', t.i::text, %(cooperative_id)s, f.id, p.id, t.id, 4.0
from bench_tree t join bench_plot p on p.i = t.plot_i join bench_farm f on f.i = p.farm_i;

-- name: bench_trace_background_lots
-- Trees after the first `fed` go into cherry lots of 100, each dried once.
create temp table bench_lot as
select g, gen_random_uuid() as cherry_id, gen_random_uuid() as dried_id,
       gen_random_uuid() as step_id
from generate_series(1, (%(trees)s - %(fed)s) / 100) as g;
insert into lots (id, public_id, cooperative_id, code, kind, quantity_kg, remaining_kg)
select cherry_id, md5(cherry_id::text), %(cooperative_id)s, 'BC-' || g, 'cherry', 400, 0
from bench_lot;
insert into lot_harvests (lot_id, harvest_id, harvest_time, tree_id, kg)
select l.cherry_id, t.harvest_id,
       timestamptz '2025-11-01 00:00+00' + (t.i %% 40000) * interval '1 minute', t.id, 4.0
from bench_tree t join bench_lot l on l.g = (t.i - %(fed)s - 1) / 100 + 1
where t.i > %(fed)s;
insert into transformations (id, cooperative_id, step, occurred_at, input_kg, output_kg)
select step_id, %(cooperative_id)s, 'drying', timestamptz '2025-12-01 00:00+00', 400, 200
from bench_lot;
insert into lots (id, public_id, cooperative_id, code, kind, quantity_kg, remaining_kg,
                  produced_by)
select dried_id, md5(dried_id::text), %(cooperative_id)s, 'BD-' || g, 'dried_cherry', 200, 200,
       step_id
from bench_lot;
insert into transformation_inputs (transformation_id, lot_id, kg)
select step_id, cherry_id, 400 from bench_lot;
insert into transformation_outputs (transformation_id, lot_id, kg)
select step_id, dried_id, 200 from bench_lot;

-- name: bench_trace_fed_harvests
select t.harvest_id from bench_tree t where t.i <= %(fed)s order by t.i;

-- name: bench_trace_analyze
analyze;

-- name: bench_trace_ceiling_lots
select id, public_id, code, kind, quantity_kg, produced_by from lots where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_harvests
select lot_id, harvest_id, harvest_time, kg, tree_id from lot_harvests
where lot_id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_trees
select id, public_id, tag_code, plot_id from trees where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_plots
select id, code, farm_id, area_ha from plots where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_farms
select id, code from farms where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_transformations
select id, step, occurred_at, place from transformations where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_lot_harvests_of_trees
select lot_id, kg from lot_harvests where tree_id = any(%(ids)s::uuid[]);

-- name: bench_trace_store_counts
select (select count(*) from trees) as trees, (select count(*) from harvest_events) as harvests,
       (select count(*) from lots) as lots, (select count(*) from transformations) as steps;

-- name: bench_trace_trees_of_farm
-- The starting trees of a forward trace from a farm (as trace/sql/genealogy.sql finds them).
select t.id from plots p join trees t on t.plot_id = p.id where p.farm_id = %(farm_id)s;

-- name: bench_trace_fed_tree
select tree_id, farm_id from harvest_events where id = %(id)s;

-- name: bench_trace_ceiling_verify_events
select * from trace_events where lot_ids && %(ids)s::uuid[];

-- name: bench_trace_ceiling_verify_harvest_rows
select h.* from lot_harvests lh join harvest_events h on h.id = lh.harvest_id
where lh.lot_id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_verify_trees
select * from trees where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_verify_plots
select * from plots where id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_verify_farms
select f.*, fp.data_consent, fp.owner_name from farms f
left join farm_private fp on fp.farm_id = f.id where f.id = any(%(ids)s::uuid[]);

-- name: bench_trace_ceiling_verify_registry_events
-- each event that holds a version of those rows, once
select * from trace_events where seq in (
    select event_seq from trees where id = any(%(trees)s::uuid[])
    union select event_seq from plots where id = any(%(plots)s::uuid[])
    union select event_seq from farms where id = any(%(farms)s::uuid[]));

-- name: bench_trace_ceiling_verify_batches
select b.* from ingest_batches b
where b.event_seq in (select distinct h.batch_seq from lot_harvests lh
                      join harvest_events h on h.id = lh.harvest_id
                      where lh.lot_id = any(%(ids)s::uuid[]));

-- name: bench_trace_ceiling_verify_statement
select * from lot_statements where lot_id = %(id)s order by id desc limit 1;

-- name: bench_trace_cross_harvests
-- The harvests of the trees that feed the cross-organisation trail: the `cross` trees
-- after the first `fed` (the background lots start after both).
select t.harvest_id from bench_tree t where t.i > %(fed)s and t.i <= %(fed)s + %(cross)s
order by t.i;
