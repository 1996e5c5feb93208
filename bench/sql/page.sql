-- Seeding the store of `coffeetrace bench page` (bench/page.py), a benchmark database of
-- its own.

-- name: bench_page_copy_trees
copy trees (public_id, tag_code, cooperative_id, plot_id, lon, lat, cultivar, planted_on)
from stdin

-- name: bench_page_analyze_trees
analyze trees;

-- name: bench_page_lot_trees
-- The trees of the benchmarked lot: the first `lot_trees` of its plots.
select id from trees where plot_id = any(%(plot_ids)s) order by tag_code limit %(lot_trees)s;

-- name: bench_page_harvests
-- Three picks in November for each tree of the lot, as ingest would have stored them.
insert into harvest_events (time, device_id, msg_id, cooperative_id, farm_id, plot_id, tree_id,
                            cherry_kg, ripeness_pct, picker_code)
select %(start)s + (pick * interval '10 days') + (n * interval '2 seconds'), %(device)s,
       'bench-' || pick || '-' || n, t.cooperative_id, p.farm_id, t.plot_id, t.id,
       2.5 + (n %% 7) * 0.4, 85 + (n %% 10), 'PK-' || lpad((n %% 40)::text, 4, '0')
from unnest(%(tree_ids)s::uuid[]) with ordinality as x(tree_id, n)
join trees t on t.id = x.tree_id
join plots p on p.id = t.plot_id
cross join generate_series(0, 2) pick;

-- name: bench_page_weather
-- Hourly rain, soil moisture and air temperature over the year before the harvest.
insert into sensor_readings (time, device_id, plot_id, metric, value)
select %(until)s - (h * interval '1 hour'), %(device)s, %(plot_id)s, m.metric,
       case m.metric
         when 'precipitation' then greatest(0, 0.6 * sin(h / 700.0) + ((h * 7919) %% 13) / 20.0 - 0.3)
         when 'soilMoistureVwc' then 28 + 8 * sin(h / 900.0)
         else 23 + 4 * sin(h / 3.82) end
from generate_series(1, 24 * 365) h,
     (values ('precipitation'), ('soilMoistureVwc'), ('temperature')) m(metric);

-- name: bench_page_storm_trees
-- The trees of the scan storm's lots (one tree each): trees outside the benchmarked lot.
select id from trees where not (id = any(%(lot_tree_ids)s::uuid[]))
order by tag_code limit %(storm_lots)s;
