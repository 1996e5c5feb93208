-- The embedded PostgreSQL's database (coffeetrace/embedded.py).

-- name: embedded_database_exists
select 1 from pg_database where datname = 'coffeetrace';

-- name: create_embedded_database
create database coffeetrace;

-- name: embedded_ping
select 1;
