-- name: lot_identities
select l.id, l.public_id, l.code, l.kind, l.quantity_kg, p.gtin, p.name as product_name
from lots l left join products p on p.id = l.product_id
where l.id = any(%(ids)s::uuid[]);

-- name: harvest_details
select lh.lot_id, lh.harvest_id, lh.harvest_time, lh.kg, h.cherry_kg, h.ripeness_pct,
       h.device_id, h.picker_code, t.public_id as tree_public_id, t.tag_code, t.species,
       t.cultivar, p.id as plot_id, p.code as plot_code, p.growing_area_code,
       f.code as farm_code
from lot_harvests lh
join harvest_events h on h.id = lh.harvest_id and h.time = lh.harvest_time
join trees t on t.id = lh.tree_id
join plots p on p.id = t.plot_id
join farms f on f.id = p.farm_id
where lh.lot_id = any(%(lot_ids)s::uuid[])
order by lh.harvest_time, lh.harvest_id;

-- name: transformation_details
select t.id, t.step, t.occurred_at, t.place, t.place_i18n, t.measurements, t.evidence, t.input_kg,
       t.output_kg,
       (select json_agg(json_build_object('lot_id', i.lot_id, 'kg', i.kg::text) order by i.lot_id)
        from transformation_inputs i where i.transformation_id = t.id) as inputs,
       (select json_agg(json_build_object('lot_id', o.lot_id, 'kg', o.kg::text) order by o.lot_id)
        from transformation_outputs o where o.transformation_id = t.id) as outputs
from transformations t where t.id = any(%(ids)s::uuid[])
order by t.occurred_at, t.id;

-- name: plot_sensor_summary
-- Daily buckets recombined into one summary per metric over the growing period.
select metric, min(bucket) as first_day, max(bucket) as last_day, sum(n) as n,
       sum(avg * n) / nullif(sum(n), 0) as mean, min(min) as min, max(max) as max,
       sum(total) as total
from plot_metrics_daily
where plot_id = %(plot_id)s and bucket >= %(since)s and bucket < %(until)s
group by metric order by metric;

-- name: plots_for_export
select p.id, p.code, p.geometry, p.area_ha, p.centroid_lon, p.centroid_lat, p.district,
       p.growing_area_code, p.altitude_m, f.code as farm_code, f.display_name,
       f.display_name_consent, f.district as farm_district, f.commune,
       fp.owner_name, fp.data_consent, fp.consent_withdrawn_at,
       c.country, c.province, c.name as cooperative_name
from plots p
join farms f on f.id = p.farm_id
join cooperatives c on c.id = p.cooperative_id
left join farm_private fp on fp.farm_id = f.id
where p.id = any(%(ids)s::uuid[])
order by p.code;

-- name: cooperative
select id, code, name, country, province, gs1_company_prefix from cooperatives where id = %(id)s;

-- name: events_of_lots
select seq, kind, hash from trace_events where lot_ids && %(lot_ids)s::uuid[] order by seq;
