-- What a lot's public page shows, stored when its history moves (trace/page_snapshots.py).
-- Public columns only: farm_private is never read here.

-- name: snapshot_lot
select l.id, l.public_id, l.cooperative_id, l.code, l.kind, l.quantity_kg::float8 as quantity_kg,
       l.harvest_from, l.harvest_to, l.created_at,
       p.name as product_name, p.name_i18n as product_name_i18n, p.gtin,
       c.name as cooperative_name, c.code as cooperative_code, c.province, c.country
from lots l
join cooperatives c on c.id = l.cooperative_id
left join products p on p.id = l.product_id
where l.id = %(lot_id)s;

-- name: snapshot_trees
select public_id, lon, lat, cultivar, planted_on
from trees where public_id = any(%(public_ids)s::text[]);

-- name: snapshot_plots
select p.id, p.code, p.geometry, p.area_ha::float8 as area_ha, p.centroid_lon, p.centroid_lat
from plots p where p.cooperative_id = %(cooperative_id)s and p.code = any(%(codes)s::text[]);

-- name: snapshot_upsert
insert into lot_page_snapshots (lot_id, cooperative_id, statement_id, plot_ids, data, seal)
values (%(lot_id)s, %(cooperative_id)s, %(statement_id)s, %(plot_ids)s, %(data)s, %(seal)s)
on conflict (lot_id) do update
set cooperative_id = excluded.cooperative_id, statement_id = excluded.statement_id,
    plot_ids = excluded.plot_ids, data = excluded.data, seal = excluded.seal,
    version = nextval('lot_page_snapshot_versions'), built_at = now(),
    verification = null, verified_at = null;

-- name: snapshot_read
select lot_id, cooperative_id, version, statement_id, data, verification, verified_at,
       built_at, seal
from lot_page_snapshots where lot_id = %(lot_id)s;

-- name: snapshot_set_verification
-- A changed result moves the version (cached pages render again); the same one does not.
update lot_page_snapshots
set version = case when verification is distinct from null and verification <> %(verification)s
                   then nextval('lot_page_snapshot_versions') else version end,
    verification = %(verification)s, verified_at = now(), seal = %(seal)s
where lot_id = %(lot_id)s;

-- name: snapshot_newest_statement
select s.id, s.document, s.signature from lot_statements s
where s.lot_id = %(lot_id)s order by s.id desc limit 1;

-- name: snapshot_delete_for_plots
delete from lot_page_snapshots where plot_ids && %(plot_ids)s::uuid[];

-- name: snapshot_delete_for_cooperative
delete from lot_page_snapshots where cooperative_id = %(cooperative_id)s;

-- name: snapshot_plots_of_trees
select distinct plot_id as id from trees where id = any(%(ids)s::uuid[]);

-- name: snapshot_plots_of_farms
select id from plots where farm_id = any(%(ids)s::uuid[]);

-- name: snapshot_any_of_cooperative
select exists (select 1 from lot_page_snapshots where cooperative_id = %(cooperative_id)s) as any;
