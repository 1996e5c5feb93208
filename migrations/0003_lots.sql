-- Lots, what fed them, and the processing steps between them; the append-only,
-- hash-chained trace-event log that makes every change evident.

create table lots (
    id              uuid primary key default gen_random_uuid(),
    public_id       text not null unique,          -- random 128-bit, for short public URIs
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    code            text not null check (code ~ '^[A-Za-z0-9_.-]{1,20}$'),  -- GS1 batch/lot (AI 10)
    product_id      uuid references products (id),
    kind            text not null default 'cherry'
                    check (kind in ('cherry', 'dried_cherry', 'green', 'roasted', 'packed', 'blend')),
    quantity_kg     numeric(14, 3) not null check (quantity_kg >= 0),
    harvest_from    date,
    harvest_to      date,
    created_at      timestamptz not null default now(),
    unique (cooperative_id, code)
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
    created_at      timestamptz not null default now()
);

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
