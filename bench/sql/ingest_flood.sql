-- What `coffeetrace bench ingest-flood` (bench/ingest_flood.py) finds stored after its run,
-- for the good devices and for the flooding one (`devices`: a list of device ids).

-- name: bench_flood_messages_per_device
select device_id, count(*) from ingest_messages where device_id = any(%(devices)s)
group by device_id;

-- name: bench_flood_messages_stored
select count(*) from ingest_messages where device_id = any(%(devices)s);

-- name: bench_flood_readings_stored
select count(*) from sensor_readings where device_id = any(%(devices)s);

-- name: bench_flood_readings_distinct
select count(*) from (select distinct device_id, time, metric from sensor_readings
                      where device_id = any(%(devices)s)) d;

-- name: bench_flood_dead_letter_rows
select count(*) from dead_letters where device_id = any(%(devices)s);

-- name: bench_flood_dead_letter_rows_rate_limited
select count(*) from dead_letters where device_id = any(%(devices)s)
and reason like 'rate_limited:%%';

-- name: bench_flood_has_dead_letter_hours
-- The per-device-hour dead-letter counts exist from the dead-letter limits migration on.
select to_regclass('dead_letter_hours') is not null;

-- name: bench_flood_dead_letter_hours
select coalesce(sum(received), 0), coalesce(sum(kept), 0)
from dead_letter_hours where device_id = any(%(devices)s);
