-- Evidence that holds: signatures made when the history is written, and checkpoints.
--
-- trace_events.signature: the writer's Ed25519 signature over the event's hash, made by
-- the cooperative's active key when the event is appended ({"algorithm", "key_id",
-- "value"}; trace/keys.py). The keys live outside the database, so a row inserted or
-- rehashed with psql has no valid signature. Null only on events written before this
-- migration, which verification reports until `coffeetrace keys sign-legacy` signs them.
alter table trace_events add column signature jsonb;

-- A lot's signed statement: the provenance document as the writer built it when the lot's
-- history moved, its signature, and the checkpoint of the chain made at the same time.
-- Read paths serve the newest statement; they never sign.
create table lot_statements (
    id             bigint generated always as identity primary key,
    lot_id         uuid not null references lots(id) on delete cascade,
    cooperative_id uuid not null references cooperatives(id),
    chain_seq      bigint not null,      -- the newest chain event the statement covers
    document       jsonb not null,
    signature      jsonb not null,
    checkpoint_id  bigint,
    made_at        timestamptz not null default now()
);
create index lot_statements_lot_idx on lot_statements (lot_id, id desc);

-- Signed checkpoints of each cooperative's chain (RFC 9162 signed tree heads): the Merkle
-- tree over its events in chain order (trace/merkle.py), at tree_size leaves.
create table chain_checkpoints (
    id             bigint generated always as identity primary key,
    cooperative_id uuid not null references cooperatives(id),
    tree_size      bigint not null check (tree_size >= 0),
    root_hash      text not null check (root_hash ~ '^[0-9a-f]{64}$'),
    head_seq       bigint,
    issued_at      timestamptz not null,
    body           jsonb not null,       -- exactly what was signed
    signature      jsonb not null
);
create index chain_checkpoints_coop_idx on chain_checkpoints (cooperative_id, tree_size desc, id desc);
