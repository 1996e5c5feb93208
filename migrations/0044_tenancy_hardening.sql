-- API and tenancy hardening: several GS1 company prefixes per cooperative, the keys of
-- the platform's admin API, and the index the harvest list's farm filter reads.

-- GS1 company prefixes. A cooperative may hold several (GS1 assigns another as the
-- numbers of one run out), and a product's GTIN must come from one of them
-- (trace/registry.py, create_product). 4 to 12 digits, as GS1 defines a company prefix;
-- that its first digits are a GS1 Member Organisation's, and that it overlaps no prefix
-- already held, is checked when the platform admin assigns it (trace/cooperatives.py).
create table cooperative_gs1_prefixes (
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    prefix          text not null check (prefix ~ '^[0-9]{4,12}$'),
    created_at      timestamptz not null default now(),
    primary key (cooperative_id, prefix)
);

insert into cooperative_gs1_prefixes (cooperative_id, prefix, created_at)
select id, gs1_company_prefix, created_at from cooperatives where gs1_company_prefix is not null;

-- Kept, not dropped: older queries still select it. Nothing checks GTINs against it.
comment on column cooperatives.gs1_company_prefix is
    'Superseded by cooperative_gs1_prefixes (migration 0044), which GTINs are checked against:'
    ' the prefix given to registry.create_cooperative, also recorded there; null for'
    ' cooperatives created by the admin API or `coffeetrace coop create`.';

-- Keys of the platform admin API (/admin/...: create cooperatives, assign their GS1
-- prefixes, issue their first API key), made with `coffeetrace admin-key create`. A table
-- apart from api_keys, so that no cooperative key, whatever its role, can ever be one.
-- As there, only the SHA-256 of a random 256-bit token is stored.
create table platform_admin_keys (
    id            uuid primary key default gen_random_uuid(),
    name          text not null default '',
    prefix        text not null,                 -- first characters, to recognise a key
    token_hash    char(64) not null unique,      -- hex sha256 of the whole token
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- GET /v1/harvests?farm_id= (and POST /v1/lots with farm_ids): without it a farm's
-- harvests are found by reading the whole cooperative's (266 ms for a farm with none
-- among 500,000; 1 ms with it). Plots and trees have theirs (0002).
create index harvest_events_farm_time_idx on harvest_events (farm_id, time);
