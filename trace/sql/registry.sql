-- name: insert_cooperative
insert into cooperatives (code, name, country, province, gs1_company_prefix)
values (%(code)s, %(name)s, %(country)s, %(province)s, %(gs1_company_prefix)s)
returning *;

-- name: get_cooperative_by_code
select * from cooperatives where code = %(code)s;

-- name: insert_product
insert into products (cooperative_id, name, kind, gtin, name_i18n)
values (%(cooperative_id)s, %(name)s, %(kind)s, %(gtin)s, %(name_i18n)s)
returning *;

-- name: insert_farm
insert into farms (cooperative_id, code, display_name, display_name_consent, district, commune)
values (%(cooperative_id)s, %(code)s, %(display_name)s, %(display_name_consent)s,
        %(district)s, %(commune)s)
returning *;

-- name: farm_cooperative
select id, cooperative_id from farms where id = %(id)s;

-- name: upsert_farm_private
insert into farm_private (farm_id, owner_name, phone, national_id, address, data_consent, consent_at,
                          authority_consent)
values (%(farm_id)s, %(owner_name)s, %(phone)s, %(national_id)s, %(address)s, %(data_consent)s,
        case when %(data_consent)s then now() end, %(authority_consent)s)
on conflict (farm_id) do update set
    owner_name = excluded.owner_name, phone = excluded.phone,
    national_id = excluded.national_id, address = excluded.address,
    data_consent = excluded.data_consent, consent_at = excluded.consent_at,
    authority_consent = excluded.authority_consent
returning *;

-- name: insert_plot
insert into plots (cooperative_id, farm_id, code, geometry, area_ha, altitude_m,
                   growing_area_code, district, centroid_lon, centroid_lat)
select f.cooperative_id, f.id, %(code)s, %(geometry)s, %(area_ha)s, %(altitude_m)s,
       %(growing_area_code)s, %(district)s, %(centroid_lon)s, %(centroid_lat)s
from farms f where f.id = %(farm_id)s and f.cooperative_id = %(cooperative_id)s
returning *;

-- name: insert_tree
insert into trees (public_id, tag_code, cooperative_id, plot_id, lon, lat, species, cultivar,
                   planted_on, status)
select %(public_id)s, %(tag_code)s, p.cooperative_id, p.id, %(lon)s, %(lat)s, %(species)s,
       %(cultivar)s, %(planted_on)s, %(status)s
from plots p where p.id = %(plot_id)s and p.cooperative_id = %(cooperative_id)s
returning *;

-- name: insert_device
insert into devices (id, cooperative_id, kind, plot_id, tree_id, credential_hash)
values (%(id)s, %(cooperative_id)s, %(kind)s, %(plot_id)s, %(tree_id)s, %(credential_hash)s)
returning id, cooperative_id, kind, plot_id, tree_id, active, registered_at;

-- name: update_device_credential
update devices set credential_hash = %(credential_hash)s
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning id;

-- name: set_device_active
-- Disable (or enable again) a device of the cooperative; ingest refuses an inactive
-- device's messages (inactive_device) and the broker its connection.
update devices set active = %(active)s
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning id, cooperative_id, kind, plot_id, tree_id, active, registered_at;

-- name: get_device_cooperative
select d.id, d.cooperative_id, d.active, c.code as cooperative_code
from devices d join cooperatives c on c.id = d.cooperative_id
where d.id = %(id)s;

-- name: registered_device
select id, cooperative_id, kind, plot_id, tree_id, active, registered_at
from devices where id = %(id)s;

-- name: plot_is_of_cooperative
select 1 from plots where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: tree_is_of_cooperative
select 1 from trees where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: cooperative_gs1_prefix
select gs1_company_prefix from cooperatives where id = %(cooperative_id)s;

-- name: own_product_by_gtin
select id, name from products where gtin = %(gtin)s and cooperative_id = %(cooperative_id)s;

-- name: cooperative_code
select code from cooperatives where id = %(cooperative_id)s;
