-- Lots, what fed them, and the processing steps between them; the append-only,
-- hash-chained trace-event log that makes every change evident.

create table lots (
    id              uuid primary key default gen_random_uuid(),
    public_id       text collate "C" not null unique,  -- random 128-bit, for short public URIs
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    code            text not null check (code ~ '^[A-Za-z0-9_.-]{1,20}$'),  -- GS1 batch/lot (AI 10)
    product_id      uuid references products (id),
    kind            text not null default 'cherry'
                    check (kind in ('cherry', 'dried_cherry', 'green', 'roasted', 'packed', 'blend')),
    quantity_kg     numeric(14, 3) not null check (quantity_kg >= 0),
    -- what transformations have not yet consumed; updated under the row lock, so two
    -- concurrent consumers can never both take the last kilograms
    remaining_kg    numeric(14, 3) not null check (remaining_kg >= 0),
    produced_by     uuid,                          -- transformation; null for cherry lots
    -- fresh-cherry kg behind the lot, carried through every step in proportion to kg, so
    -- yields compound (drying then hulling cannot beat cherry-to-green's limit)
    cherry_equiv_kg numeric(18, 6),
    event_seq       bigint,                        -- its lot_created event (cherry lots)
    harvest_from    date,
    harvest_to      date,
    created_at      timestamptz not null default now(),
    unique (cooperative_id, code),
    check (remaining_kg <= quantity_kg)
);
create index lots_coop_idx on lots (cooperative_id, created_at desc);

-- A cherry lot's harvest kilograms. A harvest's kilograms can be consumed once, in parts.
create table lot_harvests (
    lot_id        uuid not null references lots (id) on delete cascade,
    harvest_id    uuid not null,
    harvest_time  timestamptz not null,
    tree_id       uuid not null,
    kg            numeric(10, 3) not null check (kg > 0),
    primary key (lot_id, harvest_id)
);
create index lot_harvests_harvest_idx on lot_harvests (harvest_id);
create index lot_harvests_tree_idx on lot_harvests (tree_id);

create table transformations (
    id              uuid primary key default gen_random_uuid(),
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    step            text not null,
    occurred_at     timestamptz not null,
    place           text,
    measurements    jsonb not null default '{}'::jsonb,
    evidence        jsonb not null default '[]'::jsonb,
    -- totals kept with the step: the genealogy divides by input_kg on every edge
    input_kg        numeric(14, 3) not null check (input_kg > 0),
    output_kg       numeric(14, 3) not null check (output_kg > 0),
    -- its trace event: verification finds the event even if the event's lot_ids are edited
    event_seq       bigint,
    created_at      timestamptz not null default now()
);
create index transformations_coop_idx on transformations (cooperative_id, occurred_at desc);

alter table lots add constraint lots_produced_by_fkey
    foreign key (produced_by) references transformations (id);

create table transformation_inputs (
    transformation_id  uuid not null references transformations (id) on delete cascade,
    lot_id             uuid not null references lots (id),
    kg                 numeric(14, 3) not null check (kg > 0),
    primary key (transformation_id, lot_id)
);
create index transformation_inputs_lot_idx on transformation_inputs (lot_id);

create table transformation_outputs (
    transformation_id  uuid not null references transformations (id) on delete cascade,
    lot_id             uuid not null references lots (id),
    kg                 numeric(14, 3) not null check (kg > 0),
    primary key (transformation_id, lot_id)
);
create index transformation_outputs_lot_idx on transformation_outputs (lot_id);

-- Append-only log; each row's hash covers its content and the previous row's hash
-- within the same cooperative's chain.
create table trace_events (
    seq             bigint generated always as identity primary key,
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    kind            text not null,
    lot_ids         uuid[] not null default '{}',
    occurred_at     timestamptz not null,
    recorded_at     timestamptz not null default now(),
    payload         jsonb not null,
    prev_hash       text not null,
    hash            text not null unique
);
create index trace_events_coop_seq_idx on trace_events (cooperative_id, seq);
create index trace_events_lots_idx on trace_events using gin (lot_ids);

-- Figures that can be stored but not believed; shown to the cooperative, never refused.
create table plausibility_flags (
    id              bigint generated always as identity primary key,
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    kind            text not null
                    check (kind in ('tree_season_yield', 'harvest_before_planting',
                                    'tree_outside_plot')),
    tree_id         uuid not null,
    harvest_id      uuid,
    season          integer,                       -- harvest season's starting year
    details         jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now()
);
-- one flag per tree and kind (per season, per harvest): rebuilding a lot adds no duplicates
create unique index plausibility_flags_once_idx
    on plausibility_flags (kind, tree_id, coalesce(season, 0),
                           coalesce(harvest_id, '00000000-0000-0000-0000-000000000000'::uuid));
create index plausibility_flags_coop_idx on plausibility_flags (cooperative_id, created_at desc);
