-- `coffeetrace bench eudr` (bench/eudr.py): the rows a lot's DDS build and its EUDR
-- readiness read, fetched by id (the ceiling the real functions are compared with).

-- name: bench_eudr_ceiling_lots
select id, public_id, code, kind, quantity_kg, produced_by, cooperative_id from lots
where id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_transformations
select t.id, t.step, t.input_kg, ti.lot_id, ti.kg from transformations t
join transformation_inputs ti on ti.transformation_id = t.id
where t.id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_lot_harvests
select lot_id, harvest_id, harvest_time, tree_id, kg from lot_harvests
where lot_id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_trees
select id, plot_id, species, planted_on from trees where id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_plots
select p.id, p.code, p.geometry, p.area_ha, p.centroid_lon, p.centroid_lat, p.district,
       f.id as farm_id, f.code as farm_code, fp.owner_name, fp.authority_consent,
       c.code as cooperative_code, c.name as cooperative_name, c.country
from plots p
join farms f on f.id = p.farm_id
join cooperatives c on c.id = p.cooperative_id
left join farm_private fp on fp.farm_id = f.id
where p.id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_screenings
select * from plot_screenings where plot_id = any(%(ids)s::uuid[]);

-- name: bench_eudr_ceiling_references
select * from lot_dds_references where lot_id = any(%(ids)s::uuid[]);
