-- What the console's screens show (api/console/pages_*.py); always within one cooperative.

-- name: console_harvest_by_plot
-- Fresh-cherry kg of the season (from %(season_start)s) and of today, by farm and plot.
select f.id as farm_id, f.code as farm_code, p.id as plot_id, p.code as plot_code,
       coalesce(sum(h.cherry_kg) filter (where h.time >= %(day_start)s), 0)::float8 as today_kg,
       count(*) filter (where h.time >= %(day_start)s) as today_picks,
       sum(h.cherry_kg)::float8 as season_kg,
       count(*) as season_picks
from harvest_events h
join plots p on p.id = h.plot_id
join farms f on f.id = h.farm_id
where h.cooperative_id = %(cooperative_id)s and h.time >= %(season_start)s
group by f.id, f.code, p.id, p.code
order by f.code, p.code;

-- name: console_devices
-- Each device with when it was last heard of: its status message, its newest harvest or
-- reading (within %(lookback_s)s), battery where it reports one.
select d.id, d.kind, d.active, p.code as plot_code, t.tag_code as tree_tag,
       st.battery_pct, st.online,
       greatest(st.updated_at, hv.last_at, sr.last_at) as last_seen
from devices d
left join plots p on p.id = d.plot_id
left join trees t on t.id = d.tree_id
left join device_status st on st.device_id = d.id
left join lateral (
    select max(h.time) as last_at from harvest_events h
    where h.cooperative_id = d.cooperative_id and h.device_id = d.id
      and h.time > now() - make_interval(secs => %(lookback_s)s)
) hv on true
left join lateral (
    select max(r.time) as last_at from sensor_readings r
    where r.device_id = d.id and r.time > now() - make_interval(secs => %(lookback_s)s)
) sr on true
where d.cooperative_id = %(cooperative_id)s
order by last_seen desc nulls last, d.id
limit %(limit)s;

-- name: console_dead_letters_by_reason
-- Dead letters of the last 24 hours of this cooperative's devices, by reason.
select dl.reason, count(*) as n, max(dl.received_at) as last_at
from dead_letters dl
join devices d on d.id = dl.device_id
where d.cooperative_id = %(cooperative_id)s and dl.received_at > now() - interval '24 hours'
group by dl.reason
order by n desc, dl.reason;

-- name: console_flag_counts
select f.kind, count(*) as n, max(f.created_at) as last_at
from plausibility_flags f
where f.cooperative_id = %(cooperative_id)s
group by f.kind
order by n desc;

-- name: console_waiting_lots
-- Lots with kilograms left and a next step to take (cherry: drying; dried: hulling; ...).
select l.id, l.code, l.kind, l.quantity_kg::float8 as quantity_kg,
       l.remaining_kg::float8 as remaining_kg, l.created_at
from lots l
where l.cooperative_id = %(cooperative_id)s and l.remaining_kg > 0
  and l.kind = any(%(kinds)s::text[])
order by l.created_at
limit %(limit)s;

-- name: console_filter_choices
-- Farms, plots and devices of the cooperative for the harvest filters.
select 'farm' as kind, f.id::text as id, f.code as label from farms f
where f.cooperative_id = %(cooperative_id)s
union all
select 'plot', p.id::text, p.code from plots p where p.cooperative_id = %(cooperative_id)s
union all
select 'device', d.id, d.id from devices d
where d.cooperative_id = %(cooperative_id)s and d.kind in ('harvest_scale', 'phone')
order by 1, 3
limit 3000;

-- name: console_list_lots
select l.id, l.code, l.kind, l.quantity_kg::float8 as quantity_kg,
       l.remaining_kg::float8 as remaining_kg, l.harvest_from, l.harvest_to, l.created_at,
       p.name as product_name
from lots l left join products p on p.id = l.product_id
where l.cooperative_id = %(cooperative_id)s
  and (%(kind)s::text is null or l.kind = %(kind)s)
  and (%(code)s::text is null or l.code ilike %(code)s || '%%')
order by l.created_at desc, l.id
limit %(limit)s;

-- name: console_lot_detail
select l.id, l.public_id, l.code, l.kind, l.product_id, l.quantity_kg::float8 as quantity_kg,
       l.remaining_kg::float8 as remaining_kg, l.cherry_equiv_kg::float8 as cherry_equiv_kg,
       l.harvest_from, l.harvest_to, l.created_at, l.produced_by, p.gtin,
       p.name as product_name,
       (select count(*) from lot_harvests lh where lh.lot_id = l.id) as harvest_count
from lots l left join products p on p.id = l.product_id
where l.id = %(id)s and l.cooperative_id = %(cooperative_id)s;

-- name: console_lot_steps
-- The steps that made the lot (its inputs) and those that took from it (its outputs),
-- with the lots and kilograms on both sides.
select t.id, t.step, t.occurred_at, t.place,
       case when exists (select 1 from transformation_outputs o
                         where o.transformation_id = t.id and o.lot_id = %(id)s)
            then 'made' else 'used' end as role,
       (select coalesce(json_agg(json_build_object('lot_id', l.id, 'code', l.code,
                                                   'kind', l.kind, 'kg', i.kg::float8)
                                 order by l.code), '[]')
        from transformation_inputs i join lots l on l.id = i.lot_id
        where i.transformation_id = t.id) as inputs,
       (select coalesce(json_agg(json_build_object('lot_id', l.id, 'code', l.code,
                                                   'kind', l.kind, 'kg', o.kg::float8)
                                 order by l.code), '[]')
        from transformation_outputs o join lots l on l.id = o.lot_id
        where o.transformation_id = t.id) as outputs
from transformations t
where t.cooperative_id = %(cooperative_id)s
  and (exists (select 1 from transformation_inputs i
               where i.transformation_id = t.id and i.lot_id = %(id)s)
       or exists (select 1 from transformation_outputs o
                  where o.transformation_id = t.id and o.lot_id = %(id)s))
order by t.occurred_at, t.id;

-- name: console_products
select id, name, kind from products where cooperative_id = %(cooperative_id)s
order by name limit 500;
