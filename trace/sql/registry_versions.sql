-- Registry versions (trace/registry_versions.py): the rows whose facts are versioned, with
-- the chain event (event_seq) that holds each one's version in force.

-- name: registry_version_plots
select id, cooperative_id, event_seq, code, farm_id, geometry, area_ha, altitude_m,
       growing_area_code, district, centroid_lon, centroid_lat
from plots where id = any(%(ids)s::uuid[]);

-- name: registry_version_trees
select id, cooperative_id, event_seq, public_id, tag_code, plot_id, lon, lat, species,
       cultivar, planted_on, status
from trees where id = any(%(ids)s::uuid[]);

-- name: registry_version_farms
-- Consent and the owner's name live in farm_private; they are facts of the farm.
select f.id, f.cooperative_id, f.event_seq, f.code, f.display_name, f.display_name_consent,
       f.district, f.commune, coalesce(fp.data_consent, false) as data_consent,
       fp.consent_withdrawn_at, fp.owner_name, coalesce(fp.authority_consent, false) as authority_consent
from farms f left join farm_private fp on fp.farm_id = f.id
where f.id = any(%(ids)s::uuid[]);

-- name: registry_version_products
select id, cooperative_id, event_seq, name, kind, gtin, name_i18n
from products where id = any(%(ids)s::uuid[]);

-- name: registry_version_set_plots
update plots set event_seq = %(seq)s where id = any(%(ids)s::uuid[]);

-- name: registry_version_set_trees
update trees set event_seq = %(seq)s where id = any(%(ids)s::uuid[]);

-- name: registry_version_set_farms
update farms set event_seq = %(seq)s where id = any(%(ids)s::uuid[]);

-- name: registry_version_set_products
update products set event_seq = %(seq)s where id = any(%(ids)s::uuid[]);

-- name: registry_version_events
-- The events the rows name, each once, with the records among them of the rows asked
-- about (a registry event may hold thousands of rows' versions; only the wanted ones come
-- back). An event that records none of them still comes back, with id and facts null.
-- Each payload is read once (materialised) and its records are matched to the wanted ids
-- by a hash join, not by a scan of the id list per record.
with ev as materialized (
    select seq, cooperative_id, kind,
           case when kind = 'registry' then payload ->> 'entity' end as entity,
           case when kind = 'registry' and jsonb_typeof(payload -> 'records') = 'array'
                then payload -> 'records' end as records
    from trace_events where seq = any(%(seqs)s::bigint[])
), recs as (
    select ev.seq, rec ->> 'id' as id, rec -> 'facts' as facts
    from ev, jsonb_array_elements(ev.records) as rec
), found as (
    select recs.* from recs join (select distinct unnest(%(ids)s::text[]) as id) wanted
        on wanted.id = recs.id
)
select ev.seq, ev.cooperative_id, ev.kind, ev.entity, found.id, found.facts
from ev left join found on found.seq = ev.seq;

-- name: registry_version_unversioned_plots
-- Rows without a version (registered before versions existed, or bulk-loaded with SQL).
select id from plots where cooperative_id = %(cooperative_id)s and event_seq is null
order by farm_id, id;

-- name: registry_version_unversioned_trees
-- By plot: a lot's trees, which come from few plots, then sit in few registry events (a
-- verification reads every event whose records it checks, in full).
select id from trees where cooperative_id = %(cooperative_id)s and event_seq is null
order by plot_id, id;

-- name: registry_version_unversioned_farms
select id from farms where cooperative_id = %(cooperative_id)s and event_seq is null order by id;

-- name: registry_version_unversioned_products
select id from products
where cooperative_id = %(cooperative_id)s and event_seq is null order by id;

-- name: registry_version_seqs
-- The registry events that rows name: verification checks their hashes, links and
-- signatures like the lots' events (a row edited together with its event's facts is
-- caught there, not by comparing the two).
select distinct event_seq as seq from (
    select event_seq from plots where id = any(%(plot_ids)s::uuid[])
    union all select event_seq from trees where id = any(%(tree_ids)s::uuid[])
    union all select event_seq from farms where id = any(%(farm_ids)s::uuid[])
    union all select event_seq from products where id = any(%(product_ids)s::uuid[])
) s
where event_seq is not null
order by 1;

-- name: registry_newer_versions
-- The newest version of each asked-for row when it is newer than the one the row names
-- (registry_record_versions, migration 0045): none when every row is at its newest. One
-- probe of the primary key per row (the lateral LIMIT keeps it a probe: a join let the
-- planner hash the whole table).
select u.id::text as id, n.seq
from unnest(%(ids)s::uuid[], %(seqs)s::bigint[]) as u(id, seq)
cross join lateral (
    select v.seq from registry_record_versions v
    where v.record_id = u.id and v.seq > u.seq
    order by v.seq desc limit 1) as n;

-- name: registry_version_index_of_event
-- The rows registry_record_versions lists for one registry event.
select record_id::text as id from registry_record_versions where seq = %(seq)s;
