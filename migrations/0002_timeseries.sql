-- Time series written by ingest: sensor readings, harvest events, the message ledger
-- that makes ingest idempotent, and the dead-letter table for rejected messages.
-- On TimescaleDB, 0004 turns the first two into hypertables; every query here also
-- runs on plain PostgreSQL and gives the same answers.

create table sensor_readings (
    time       timestamptz not null,
    device_id  text not null,
    plot_id    uuid not null,
    tree_id    uuid,
    metric     text not null,          -- FIWARE Agrifood names, see docs/mqtt.md
    value      double precision not null
);
create index sensor_readings_plot_metric_time_idx on sensor_readings (plot_id, metric, time desc);
create index sensor_readings_device_time_idx on sensor_readings (device_id, time desc);

create table harvest_events (
    id              uuid not null default gen_random_uuid(),
    time            timestamptz not null,
    device_id       text not null,
    msg_id          text not null,
    cooperative_id  uuid not null,
    farm_id         uuid not null,
    plot_id         uuid not null,
    tree_id         uuid not null,
    cherry_kg       numeric(10, 3) not null check (cherry_kg >= 0),
    ripeness_pct    numeric(5, 2) check (ripeness_pct between 0 and 100),
    picker_code     text,
    received_at     timestamptz not null default now(),
    -- a hypertable's unique keys must contain its time column
    primary key (id, time)
);
create index harvest_events_tree_time_idx on harvest_events (tree_id, time);
create index harvest_events_plot_time_idx on harvest_events (plot_id, time);
create index harvest_events_coop_time_idx on harvest_events (cooperative_id, time);

-- One row per accepted device message: a repeated (device_id, msg_id) adds nothing.
create table ingest_messages (
    device_id    text not null,
    msg_id       text not null,
    kind         text not null check (kind in ('telemetry', 'harvest', 'status')),
    readings     integer not null,
    received_at  timestamptz not null default now(),
    primary key (device_id, msg_id)
);

create table dead_letters (
    id           bigint generated always as identity primary key,
    received_at  timestamptz not null default now(),
    topic        text not null,
    device_id    text,
    msg_id       text,
    reason       text not null,
    payload      text not null,          -- truncated raw payload
    payload_size integer not null
);
create index dead_letters_device_idx on dead_letters (device_id, received_at desc);

create table device_status (
    device_id   text primary key,
    online      boolean not null,
    battery_pct double precision,
    firmware    text,
    updated_at  timestamptz not null default now()
);

-- Hourly and daily per-plot summaries. On TimescaleDB, 0004 replaces these views with
-- continuous aggregates of the same name and columns. The bucket origin is TimescaleDB's
-- (2000-01-03) so hour and day boundaries agree on both.
create view plot_metrics_hourly as
select date_bin('1 hour', time, timestamptz '2000-01-03 00:00:00+00') as bucket,
       plot_id, metric,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as n,
       sum(value) as total
from sensor_readings
group by 1, 2, 3;

create view plot_metrics_daily as
select date_bin('1 day', time, timestamptz '2000-01-03 00:00:00+00') as bucket,
       plot_id, metric,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as n,
       sum(value) as total
from sensor_readings
group by 1, 2, 3;
