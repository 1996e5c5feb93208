-- API keys of the cooperative API: one row per issued key, stored as the SHA-256 of a
-- random 256-bit token (the token's entropy, not the hash's cost, is what protects it).
-- The role decides what the key may do: admin > operator > read-only.

create table api_keys (
    id              uuid primary key default gen_random_uuid(),
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    name            text not null default '',
    role            text not null check (role in ('admin', 'operator', 'read-only')),
    prefix          text not null,                 -- first characters, to recognise a key
    token_hash      char(64) not null unique,      -- hex sha256 of the whole token
    created_at      timestamptz not null default now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
create index api_keys_coop_idx on api_keys (cooperative_id, created_at desc);
