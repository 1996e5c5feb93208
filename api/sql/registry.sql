-- Reads of the cooperative API. Every query is bounded by the caller's cooperative_id:
-- an id of another cooperative finds nothing, which the API answers with 404.
-- Lists use keyset pagination on id (`after` = last id of the previous page).

-- name: list_products
select id, name, name_i18n, kind, gtin, created_at from products
where cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or id > %(after)s::uuid)
  and (%(kind)s::text is null or kind = %(kind)s)
order by id limit %(limit)s;

-- name: get_product
select id, name, name_i18n, kind, gtin, created_at from products
where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: list_farms
select id, code, display_name, display_name_consent, district, commune, created_at from farms
where cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or id > %(after)s::uuid)
  and (%(district)s::text is null or district = %(district)s)
  and (%(commune)s::text is null or commune = %(commune)s)
  and (%(code)s::text is null or code = %(code)s)
order by id limit %(limit)s;

-- name: get_farm
select id, code, display_name, display_name_consent, district, commune, created_at from farms
where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: get_farm_private
select p.owner_name, p.phone, p.national_id, p.address, p.data_consent, p.consent_at,
       p.consent_withdrawn_at
from farm_private p join farms f on f.id = p.farm_id
where p.farm_id = %(id)s and f.cooperative_id = %(cooperative_id)s;

-- name: list_plots
select id, farm_id, code, geometry, area_ha::float8 as area_ha, altitude_m, growing_area_code,
       district, centroid_lon, centroid_lat, created_at
from plots
where cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or id > %(after)s::uuid)
  and (%(farm_id)s::uuid is null or farm_id = %(farm_id)s::uuid)
  and (%(district)s::text is null or district = %(district)s)
  and (%(growing_area_code)s::text is null or growing_area_code = %(growing_area_code)s)
order by id limit %(limit)s;

-- name: get_plot
select id, farm_id, code, geometry, area_ha::float8 as area_ha, altitude_m, growing_area_code,
       district, centroid_lon, centroid_lat, created_at
from plots where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: list_trees
select id, public_id, tag_code, plot_id, lon, lat, species, cultivar, planted_on, status,
       created_at
from trees
where cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or id > %(after)s::uuid)
  and (%(plot_id)s::uuid is null or plot_id = %(plot_id)s::uuid)
  and (%(cultivar)s::text is null or cultivar = %(cultivar)s)
  and (%(status)s::text is null or status = %(status)s)
  and (%(tag_code)s::text is null or tag_code = %(tag_code)s)
order by id limit %(limit)s;

-- name: get_tree
select id, public_id, tag_code, plot_id, lon, lat, species, cultivar, planted_on, status,
       created_at
from trees where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: list_devices
select id, kind, plot_id, tree_id, active, registered_at from devices
where cooperative_id = %(cooperative_id)s
  and (%(after)s::text is null or id > %(after)s::text)
  and (%(kind)s::text is null or kind = %(kind)s)
  and (%(plot_id)s::uuid is null or plot_id = %(plot_id)s::uuid)
  and (%(active)s::boolean is null or active = %(active)s::boolean)
order by id limit %(limit)s;

-- name: get_device
select id, kind, plot_id, tree_id, active, registered_at from devices
where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: list_lots
select l.id, l.public_id, l.code, l.kind, l.product_id, l.quantity_kg::float8 as quantity_kg,
       l.remaining_kg::float8 as remaining_kg, l.harvest_from, l.harvest_to, l.created_at, p.gtin
from lots l left join products p on p.id = l.product_id
where l.cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or l.id > %(after)s::uuid)
  and (%(kind)s::text is null or l.kind = %(kind)s)
  and (%(product_id)s::uuid is null or l.product_id = %(product_id)s::uuid)
  and (%(code)s::text is null or l.code = %(code)s)
order by l.id limit %(limit)s;

-- name: get_lot_summary
select l.id, l.public_id, l.code, l.kind, l.product_id, l.quantity_kg::float8 as quantity_kg,
       l.remaining_kg::float8 as remaining_kg, l.harvest_from, l.harvest_to, l.created_at, p.gtin, p.name as product_name
from lots l left join products p on p.id = l.product_id
where l.id = %(id)s and l.cooperative_id = %(cooperative_id)s;

-- name: list_transformations
select t.id, t.step, t.occurred_at, t.place, t.measurements, t.evidence, t.created_at,
       coalesce((select json_agg(json_build_object('lot_id', i.lot_id, 'kg', i.kg::float8))
                 from transformation_inputs i where i.transformation_id = t.id), '[]') as inputs,
       coalesce((select json_agg(json_build_object('lot_id', o.lot_id, 'kg', o.kg::float8))
                 from transformation_outputs o where o.transformation_id = t.id), '[]') as outputs
from transformations t
where t.cooperative_id = %(cooperative_id)s
  and (%(after)s::uuid is null or t.id > %(after)s::uuid)
  and (%(id)s::uuid is null or t.id = %(id)s::uuid)
  and (%(step)s::text is null or t.step = %(step)s)
  and (%(lot_id)s::uuid is null or exists (
        select 1 from transformation_inputs i where i.transformation_id = t.id
                                                and i.lot_id = %(lot_id)s::uuid
        union all
        select 1 from transformation_outputs o where o.transformation_id = t.id
                                                 and o.lot_id = %(lot_id)s::uuid))
order by t.id limit %(limit)s;
