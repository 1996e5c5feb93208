-- The migration runner's own statements (coffeetrace/migrate.py).

-- name: timescaledb_available
-- the extension is installed, and the preload list (checked in Python) names it
select exists(select 1 from pg_available_extensions where name = 'timescaledb'),
       current_setting('shared_preload_libraries');

-- name: lock_migrations
select pg_advisory_lock(%(key)s);

-- name: unlock_migrations
select pg_advisory_unlock(%(key)s);

-- name: create_schema_migrations
create table if not exists schema_migrations (
    version text primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
);

-- name: applied_migrations
select version, checksum from schema_migrations;

-- name: record_migration
insert into schema_migrations (version, name, checksum)
values (%(version)s, %(name)s, %(checksum)s);
