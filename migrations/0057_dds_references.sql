-- DDS reference numbers that travel with the coffee (issue 16, item 5; trace/dds_references.py).
--
-- An organisation records the reference and verification numbers of a due diligence
-- statement it filed for one of its lots, or received with it (its supplier's). Each
-- recording is a signed chain event of the organisation ("dds_reference") holding the row's
-- facts; event_seq names it, so that verification names a row edited, inserted or deleted
-- with psql (dds_references.check_lots, check_chain). Rows are evidence: never updated by
-- the application. The references in force for a lot are its own and those of every lot
-- upstream of it (genealogy's backward walk: blends, packing, shipments' receipts).
create table lot_dds_references (
    id                  uuid primary key default gen_random_uuid(),
    cooperative_id      uuid not null references cooperatives (id) on delete cascade,
    lot_id              uuid not null references lots (id) on delete cascade,
    -- the EU's ReferenceNumberType (at most 14) and VerificationNumberType (5 to 35)
    reference_number    text not null check (reference_number ~ '^[A-Z0-9]{1,14}$'),
    verification_number text not null check (verification_number ~ '^[A-Z0-9]{5,35}$'),
    role                text not null check (role in ('filed', 'received')),
    note                text check (char_length(note) <= 2000),
    recorded_by         text not null check (char_length(recorded_by) between 1 and 200),
    recorded_at         timestamptz not null default now(),
    event_seq           bigint,
    unique (lot_id, reference_number)
);
-- the references of a lot and of the lots upstream of it
create index lot_dds_references_lot_idx on lot_dds_references (lot_id);
create index lot_dds_references_coop_idx on lot_dds_references (cooperative_id);

-- Whether the organisation's public lot pages show the reference number of a statement on
-- file (the page always says that one is on file; the number only with this setting).
alter table cooperatives
    add column dds_number_public boolean not null default false;
comment on column cooperatives.dds_number_public is
    'Whether public lot pages show the DDS reference number on file (else only that a'
    ' statement is on file); set by the organisation''s admin.';
