-- Statements filed in the EU Information System (table dds_submissions, migration 0047).

-- name: dds_submission_insert
insert into dds_submissions (cooperative_id, lot_id, environment, eu_uuid, internal_reference,
                             operator_role, activity_type, statement_sha256, statement_bytes)
values (%(cooperative_id)s, %(lot_id)s, %(environment)s, %(eu_uuid)s, %(internal_reference)s,
        %(operator_role)s, %(activity_type)s, %(statement_sha256)s, %(statement_bytes)s)
returning *;

-- name: dds_submissions_of_lot
select * from dds_submissions
where lot_id = %(lot_id)s and environment = %(environment)s
order by submitted_at desc, id;

-- name: dds_submissions_by_internal_reference
select * from dds_submissions
where environment = %(environment)s and internal_reference = %(internal_reference)s
order by submitted_at desc, id;

-- name: dds_submission_by_eu_uuid
select * from dds_submissions where environment = %(environment)s and eu_uuid = %(eu_uuid)s;

-- name: dds_submission_refresh
update dds_submissions set
    status = %(status)s,
    reference_number = coalesce(%(reference_number)s, reference_number),
    verification_number = coalesce(%(verification_number)s, verification_number),
    rejection_reason = %(rejection_reason)s,
    authority_message = coalesce(%(authority_message)s, authority_message),
    authority_message_at = coalesce(%(authority_message_at)s, authority_message_at),
    eu_version = coalesce(%(eu_version)s, eu_version),
    eu_updated_at = coalesce(%(eu_updated_at)s, eu_updated_at),
    status_checked_at = now(),
    status_changed_at = case when status is distinct from %(status)s then now()
                             else status_changed_at end
where id = %(id)s
returning *;

-- name: dds_submission_amended
update dds_submissions set
    status = %(status)s,
    internal_reference = %(internal_reference)s,
    statement_sha256 = %(statement_sha256)s,
    statement_bytes = %(statement_bytes)s,
    amended_at = now(),
    status_changed_at = case when status is distinct from %(status)s then now()
                             else status_changed_at end
where id = %(id)s
returning *;

-- name: dds_submission_withdrawn
update dds_submissions set
    status = %(status)s,
    withdrawn_at = now(),
    status_changed_at = case when status is distinct from %(status)s then now()
                             else status_changed_at end
where id = %(id)s
returning *;
