-- Due diligence statements filed in the EU Information System through coffeetrace (`coffeetrace
-- dds submit`, euis/): one row per statement the EU accepted for processing, i.e. that got a
-- UUID from submitDds, with the lifecycle status the EU last reported and, once it is
-- AVAILABLE, the reference and verification numbers that travel with the coffee. A request the
-- EU refused outright (a SOAP fault) left nothing there and leaves nothing here.
-- Statuses are the EU's EudrStatusType (V3 common schema). The statement itself is not kept:
-- its SHA-256 and size identify the file that was filed (the operator keeps the file).
create table dds_submissions (
    id                    uuid primary key default gen_random_uuid(),
    cooperative_id        uuid not null references cooperatives (id),
    lot_id                uuid not null references lots (id),
    environment           text not null check (environment in ('acceptance', 'production')),
    eu_uuid               uuid not null,
    internal_reference    text check (char_length(internal_reference) between 1 and 50),
    operator_role         text not null
                          check (operator_role in ('OPERATOR', 'REPRESENTATIVE_OPERATOR')),
    activity_type         text not null check (activity_type in ('DOMESTIC', 'IMPORT', 'EXPORT')),
    statement_sha256      char(64) not null check (statement_sha256 ~ '^[0-9a-f]{64}$'),
    statement_bytes       bigint not null check (statement_bytes > 0),
    status                text not null default 'SUBMITTED' check (status in (
                              'SUBMITTED', 'AVAILABLE', 'REJECTED', 'WITHDRAWN', 'ARCHIVED',
                              'SUSPENDED', 'UPDATED', 'GROUPED', 'OBSOLETE')),
    reference_number      text check (char_length(reference_number) between 1 and 14),
    verification_number   text check (char_length(verification_number) between 5 and 35),
    rejection_reason      text,                     -- the EU's, when REJECTED
    authority_message     text,                     -- communicationToOperator of the authority
    authority_message_at  timestamptz,
    eu_version            integer,                  -- the statement's version at the EU
    eu_updated_at         timestamptz,              -- the overview's date at the EU
    submitted_at          timestamptz not null default now(),
    amended_at            timestamptz,
    withdrawn_at          timestamptz,
    status_checked_at     timestamptz,              -- last getDds / getDdsByInternalReference
    status_changed_at     timestamptz not null default now(),
    unique (environment, eu_uuid)
);

-- `coffeetrace dds status LOT` and `dds withdraw LOT`: a lot's statements, newest first
create index dds_submissions_lot_idx on dds_submissions (lot_id, submitted_at desc);
-- `coffeetrace dds status --reference REF`
create index dds_submissions_internal_reference_idx
    on dds_submissions (environment, internal_reference);
