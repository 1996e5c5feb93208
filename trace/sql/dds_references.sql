-- DDS reference numbers recorded per lot, and the references in force for a lot
-- (trace/dds_references.py; table lot_dds_references, migration 0057).

-- name: own_lot
select id, code, cooperative_id from lots
where id = %(lot_id)s and cooperative_id = %(cooperative_id)s;

-- name: insert_reference
insert into lot_dds_references (cooperative_id, lot_id, reference_number, verification_number,
                                role, note, recorded_by)
values (%(cooperative_id)s, %(lot_id)s, %(reference_number)s, %(verification_number)s,
        %(role)s, %(note)s, %(recorded_by)s)
on conflict (lot_id, reference_number) do nothing
returning *;

-- name: set_reference_seq
update lot_dds_references set event_seq = %(seq)s where id = %(id)s;

-- name: references_in_force
-- The references recorded on the lot and on every lot upstream of it (genealogy.sql's
-- upstream walk: transformations, packing, shipments' receipts), and the statements filed
-- through coffeetrace for those lots that the EU made AVAILABLE in %(environment)s (none
-- when it is null). LATERAL ... OFFSET 0 keeps each step an index lookup.
with recursive up (lot_id) as (
    select %(lot_id)s::uuid
    union
    select e.lot_id from up
    cross join lateral (
        select ti.lot_id from lots l
        join transformation_inputs ti on ti.transformation_id = l.produced_by
        where l.id = up.lot_id
        offset 0) e
), refs as (
    select r.id, r.lot_id, r.cooperative_id, r.reference_number, r.verification_number,
           r.role, 'recorded' as source, r.recorded_at, r.event_seq
    from up
    cross join lateral (
        select * from lot_dds_references where lot_id = up.lot_id offset 0) r
    union all
    select s.id, s.lot_id, s.cooperative_id, s.reference_number, s.verification_number,
           'filed', 'submitted', s.status_changed_at, null
    from up
    cross join lateral (
        select * from dds_submissions
        where lot_id = up.lot_id and %(environment)s::text is not null
          and environment = %(environment)s::text and status = 'AVAILABLE'
          and reference_number is not null and verification_number is not null
        offset 0) s
)
select refs.*, l.code as lot_code, l.public_id as lot_public_id,
       c.code as organisation_code, coalesce(c.public_name, c.name) as organisation_name,
       c.dds_number_public as number_public
from refs
join lots l on l.id = refs.lot_id
join cooperatives c on c.id = refs.cooperative_id
order by refs.recorded_at, refs.reference_number, refs.id;

-- name: references_of_lots
select * from lot_dds_references where lot_id = any(%(lot_ids)s::uuid[]) order by id;

-- name: references_of_cooperative
select * from lot_dds_references where cooperative_id = %(cooperative_id)s order by id;

-- name: events_by_seq
select seq, cooperative_id, kind, payload from trace_events where seq = any(%(seqs)s::bigint[]);

-- name: set_number_public
update cooperatives set dds_number_public = %(public)s where id = %(cooperative_id)s
returning id, code, dds_number_public;

-- name: number_public
select dds_number_public from cooperatives where id = %(cooperative_id)s;
