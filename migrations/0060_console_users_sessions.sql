-- The console (/console, api/console/): people of a cooperative log in with their own
-- account; API keys stay for machines. Roles are the API's (admin > operator > read-only).

-- Users: a name unique within the cooperative, an argon2id hash (argon2-cffi's encoded
-- form, parameters included), disabled rather than deleted, so that what they did stays
-- attributable.
create table console_users (
    id                  uuid primary key default gen_random_uuid(),
    cooperative_id      uuid not null references cooperatives (id) on delete cascade,
    username            text not null check (username ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
    display_name        text not null default '' check (char_length(display_name) <= 200),
    role                text not null check (role in ('admin', 'operator', 'read-only')),
    password_hash       text not null check (password_hash like '$argon2%'),
    created_at          timestamptz not null default now(),
    password_changed_at timestamptz not null default now(),
    disabled_at         timestamptz,
    unique (cooperative_id, username)
);

-- Sessions, server side: the cookie carries a random 256-bit token, only its SHA-256 is
-- stored. `csrf_token` is the synchronizer token every form of the session must send
-- back. A session ends when it expires, is idle too long, is revoked (logout, an admin)
-- or its user is disabled (console.sql checks the user on every request).
create table console_sessions (
    id            uuid primary key default gen_random_uuid(),
    user_id       uuid not null references console_users (id) on delete cascade,
    token_hash    char(64) not null unique,
    csrf_token    text not null,
    client_addr   text not null default '',
    created_at    timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    expires_at    timestamptz not null,
    revoked_at    timestamptz
);
create index console_sessions_user_idx on console_sessions (user_id) where revoked_at is null;

-- Failed logins, for throttling per account (cooperative code and user name as typed,
-- lower case) and per client address; rows older than the window are deleted as new
-- ones come.
create table console_login_failures (
    id           bigint generated always as identity primary key,
    at           timestamptz not null default now(),
    account      text not null,
    client_addr  text not null
);
create index console_login_failures_account_idx on console_login_failures (account, at);
create index console_login_failures_addr_idx on console_login_failures (client_addr, at);
