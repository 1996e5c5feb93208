-- Queries of the simulators: finding what an earlier run seeded, bulk tree loading,
-- and the store counts a simulation is reconciled with.

-- name: farms_of_cooperative
select id, code from farms where cooperative_id = %(cooperative_id)s;

-- name: plots_of_cooperative
select id, code from plots where cooperative_id = %(cooperative_id)s;

-- name: products_of_cooperative
select id, name, kind, gtin from products where cooperative_id = %(cooperative_id)s;

-- name: device_ids_of_cooperative
select id, credential_hash from devices where cooperative_id = %(cooperative_id)s;

-- name: backdate_devices
-- The simulated devices were installed before the simulated season; their registry rows
-- carry the installation date so that ingest accepts their history (it refuses readings
-- stamped before a device's registration).
update devices set registered_at = %(installed_at)s
where cooperative_id = %(cooperative_id)s and id = any(%(ids)s) and registered_at > %(installed_at)s;

-- name: copy_trees
-- event_seq: the registry event recording the batch's trees (registry_versions.record_facts)
copy trees (id, public_id, tag_code, cooperative_id, plot_id, lon, lat, species, cultivar,
            planted_on, status, event_seq) from stdin

-- name: trees_per_plot
select plot_id, count(*) as n from trees where cooperative_id = %(cooperative_id)s group by 1;

-- name: seeded_store_counts
-- What ingest stored for the given devices, to reconcile with the simulator's counters.
select
  (select count(*) from ingest_messages where device_id = any(%(ids)s)
     and kind = 'telemetry') as telemetry_records,
  (select count(*) from ingest_messages where device_id = any(%(ids)s)
     and kind = 'harvest') as harvest_records,
  (select count(*) from sensor_readings where device_id = any(%(ids)s)) as readings,
  (select count(*) from harvest_events where device_id = any(%(ids)s)) as harvest_events,
  (select coalesce(sum(cherry_kg), 0) from harvest_events
     where device_id = any(%(ids)s)) as harvest_kg,
  -- every dead letter is counted per device and hour, also those beyond the hourly cap
  -- that got no row of their own
  (select coalesce(sum(received), 0) from dead_letter_hours
     where device_id = any(%(ids)s)) as dead_letters;

-- name: harvest_count
select count(*) as n from harvest_events where cooperative_id = %(cooperative_id)s;

-- name: lot_by_code
select id, public_id, kind, quantity_kg from lots
where cooperative_id = %(cooperative_id)s and code = %(code)s;

-- name: trees_empty
select not exists (select 1 from trees) as empty;

-- name: lock_trees
lock table trees in access exclusive mode;

-- name: trees_keys
-- The unique and foreign keys of trees, to drop and re-add around a bulk load: re-adding
-- builds each index in one sort and validates each foreign key with one join, instead of
-- per-row index maintenance and per-row triggers. The primary key stays: bulk-loaded ids
-- are time-ordered, so its index only grows at its right edge (and other tables'
-- foreign keys to trees need it).
select c.conrelid::regclass::text as table_name, c.conname as name,
       pg_get_constraintdef(c.oid) as definition
from pg_constraint c
where c.conrelid = 'trees'::regclass and c.contype in ('u', 'f')
order by c.contype desc, c.conname;

-- name: trees_plain_indexes
select i.indexname as name, i.indexdef as definition
from pg_indexes i
where i.schemaname = current_schema() and i.tablename = 'trees'
  and not exists (select 1 from pg_constraint c
                  where c.conrelid = 'trees'::regclass and c.conname = i.indexname)
order by 1;

-- name: seed_maintenance_work_mem
-- the index builds after a bulk COPY sort in memory rather than in temporary files
-- (this transaction only)
set local maintenance_work_mem = '256MB';
