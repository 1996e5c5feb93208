-- Public pages: only public columns. farm_private is never read here.

-- name: lot_head
-- The lot, the hash of the latest chain event about it and the version of its stored page
-- data (0061): a new event, a rebuilt page or a new verification result invalidates the
-- page. `offset 0` keeps the lot's few events found through the GIN index on lot_ids,
-- rather than a backward walk of the whole log by seq looking for them.
select l.id, l.cooperative_id,
       (select e.hash from trace_events e
        where e.seq = (select max(s.seq) from (select seq from trace_events
                                               where lot_ids @> array[l.id] offset 0) s))
       || ':' || coalesce((select v.version::text from lot_page_snapshots v
                           where v.lot_id = l.id), '') as head
from lots l where l.public_id = %(public_id)s;

-- name: lot_page_lot
select l.id, l.public_id, l.cooperative_id, l.code, l.kind, l.quantity_kg::float8 as quantity_kg,
       l.harvest_from, l.harvest_to, l.created_at,
       p.name as product_name, p.name_i18n as product_name_i18n, p.gtin,
       c.name as cooperative_name, c.code as cooperative_code, c.province, c.country
from lots l
join cooperatives c on c.id = l.cooperative_id
left join products p on p.id = l.product_id
where l.id = %(lot_id)s;

-- name: page_conditions
-- Weekly series over the growing season from the daily per-plot aggregates:
-- rain is the weekly total (averaged over plots), the others weekly means.
select date_trunc('week', bucket) as week, metric,
       case when metric = 'precipitation'
            then sum(total) / greatest(count(distinct plot_id), 1)
            else avg(avg) end as value
from plot_metrics_daily
where plot_id = any(%(ids)s::uuid[])
  and metric in ('precipitation', 'soilMoistureVwc', 'temperature')
  and bucket >= %(since)s and bucket < %(until)s
group by 1, 2
order by 1;

-- name: tree_page
select t.id, t.public_id, t.tag_code, t.species, t.cultivar, t.planted_on, t.status,
       t.lon, t.lat, p.code as plot_code, p.district, p.altitude_m, p.growing_area_code,
       f.code as farm_code, case when f.display_name_consent then f.display_name end as farm_name,
       c.name as cooperative_name
from trees t
join plots p on p.id = t.plot_id
join farms f on f.id = p.farm_id
join cooperatives c on c.id = t.cooperative_id
where t.public_id = %(public_id)s;

-- name: tree_harvests_by_season
-- A coffee season starts in October (harvest late October to January).
select extract(year from (time at time zone 'Asia/Ho_Chi_Minh') - interval '9 months')::int as season,
       count(*) as picks, sum(cherry_kg)::float8 as kg,
       min(time) as first_pick, max(time) as last_pick
from harvest_events where tree_id = %(tree_id)s
group by 1 order by 1 desc;

-- name: tree_head
-- The tree and a fingerprint of its harvests: a new harvest invalidates the tree page.
select t.id, (select count(*) || ':' || coalesce(max(h.time)::text, '')
              from harvest_events h where h.tree_id = t.id) as head
from trees t where t.public_id = %(public_id)s;

-- name: lot_public_id_by_gtin_and_code
-- through the product's cooperative, so the (cooperative_id, code) key finds the lot
select l.public_id from products p
join lots l on l.cooperative_id = p.cooperative_id and l.code = %(code)s and l.product_id = p.id
where p.gtin = %(gtin)s;

-- name: cooperatives_public
select id, code from cooperatives order by code;

-- name: page_lot_cooperative
select cooperative_id from lots where id = %(lot_id)s;
