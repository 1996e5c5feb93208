-- Queries the TimescaleDB test runs on both servers; each returns rows in a fixed order
-- so the two answers compare as lists.

-- name: hourly
select bucket, plot_id, metric, avg, min, max, n, total
from plot_metrics_hourly
order by bucket, plot_id, metric;

-- name: daily
select bucket, plot_id, metric, avg, min, max, n, total
from plot_metrics_daily
order by bucket, plot_id, metric;

-- name: six_hourly_by_date_bin
-- The kind of query the API runs on the raw table: works unchanged on both.
select date_bin('6 hours', time, timestamptz '2000-01-03 00:00:00+00') as bucket,
       plot_id, metric, avg(value) as avg, min(value) as min, max(value) as max,
       count(*) as n
from sensor_readings
where time >= %(since)s and time < %(until)s
group by 1, 2, 3
order by 1, 2, 3;

-- name: harvest_daily_kg
select date_bin('1 day', time, timestamptz '2000-01-03 00:00:00+00') as day,
       plot_id, sum(cherry_kg) as kg, count(*) as n
from harvest_events
group by 1, 2
order by 1, 2;

-- name: view_columns
select table_name, column_name, data_type, ordinal_position
from information_schema.columns
where table_schema = 'public' and table_name in ('plot_metrics_hourly', 'plot_metrics_daily')
order by table_name, ordinal_position;

-- name: public_columns
-- Every column of the project's tables and views, to show TimescaleDB adds none.
select c.table_name, c.column_name, c.data_type, c.is_nullable
from information_schema.columns c
where c.table_schema = 'public'
order by 1, 2;

-- name: hypertables
select hypertable_name, compression_enabled
from timescaledb_information.hypertables
where hypertable_schema = 'public'
order by 1;

-- name: dimensions
select hypertable_name, column_name, time_interval
from timescaledb_information.dimensions
where hypertable_schema = 'public'
order by 1;

-- name: compression_settings
select hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc
from timescaledb_information.compression_settings
where hypertable_schema = 'public'
order by 1, 2;

-- name: jobs
select job_id, proc_name, hypertable_name, config
from timescaledb_information.jobs
where hypertable_schema = 'public' or proc_name = 'policy_refresh_continuous_aggregate'
order by job_id;

-- name: continuous_aggregates
select view_name, materialized_only
from timescaledb_information.continuous_aggregates
where view_schema = 'public'
order by 1;

-- name: chunks
select chunk_schema || '.' || chunk_name as chunk, range_start, range_end, is_compressed
from timescaledb_information.chunks
where hypertable_name = %(table)s
order by range_start;
