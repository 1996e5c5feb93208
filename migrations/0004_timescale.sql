-- requires: timescaledb
-- Applied only where the TimescaleDB extension is loadable (see coffeetrace/migrate.py).
-- Same tables and same query answers as plain PostgreSQL; hypertables, compression,
-- retention and continuous aggregates on top.

create extension if not exists timescaledb;

select create_hypertable('sensor_readings', by_range('time', interval '7 days'), migrate_data => true);
select create_hypertable('harvest_events', by_range('time', interval '30 days'), migrate_data => true);

alter table sensor_readings set (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'plot_id, metric',
    timescaledb.compress_orderby = 'time desc'
);
select add_compression_policy('sensor_readings', interval '30 days');
select add_retention_policy('sensor_readings', interval '10 years');

alter table harvest_events set (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'cooperative_id',
    timescaledb.compress_orderby = 'time desc'
);
select add_compression_policy('harvest_events', interval '180 days');

drop view plot_metrics_hourly;
drop view plot_metrics_daily;

-- materialized_only = false: buckets not yet materialized are computed from the raw
-- rows, so answers equal those of the plain views.
create materialized view plot_metrics_hourly
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select time_bucket('1 hour', time) as bucket, plot_id, metric,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as n,
       sum(value) as total
from sensor_readings
group by 1, 2, 3
with no data;

create materialized view plot_metrics_daily
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select time_bucket('1 day', time) as bucket, plot_id, metric,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as n,
       sum(value) as total
from sensor_readings
group by 1, 2, 3
with no data;

-- start_offset => null: each run refreshes every bucket that late rows have invalidated,
-- however old (devices replay offline buffers days later). A run recomputes only the
-- buckets that gained rows since the last run, so the open window stays cheap.
select add_continuous_aggregate_policy('plot_metrics_hourly',
    start_offset => null, end_offset => interval '1 hour',
    schedule_interval => interval '30 minutes');
select add_continuous_aggregate_policy('plot_metrics_daily',
    start_offset => null, end_offset => interval '1 day',
    schedule_interval => interval '6 hours');
