-- EPCIS named queries and their webhook subscriptions (trace/epcis_queries.py,
-- trace/epcis_subscriptions.py, api/epcis_deliverer.py). Rows belong to one organisation
-- (cooperative_id) and are only ever read with its id.

-- A named query: `query` is the body's "query" object as GS1's query-schema JSON writes
-- it, checked against that schema and against what GET /epcis/events implements.
create table epcis_named_queries (
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    name            text not null check (length(name) between 1 and 200),
    query           jsonb not null,
    created_at      timestamptz not null default now(),
    primary key (cooperative_id, name)
);

-- A webhook subscription to a named query. Deliveries are driven by the stored cursor
-- (the record time and id of the last event the receiver acknowledged with a 2xx), so a
-- restart of the API resumes where the last acknowledged callback ended. `status`
-- 'failing' once COFFEETRACE_EPCIS_WEBHOOK_FAILING_AFTER attempts in a row failed (it
-- keeps being retried at the longest backoff; a 2xx makes it 'active' again).
create table epcis_subscriptions (
    id                   uuid primary key default gen_random_uuid(),
    cooperative_id       uuid not null,
    query_name           text not null,
    dest                 text not null,
    signature_token      text,
    stream               boolean not null,
    schedule             jsonb,
    report_if_empty      boolean not null default false,
    initial_record_time  timestamptz not null,
    cursor_time          timestamptz,  -- null: nothing acknowledged yet
    cursor_id            bigint,
    next_run_at          timestamptz,  -- scheduled ones: the next time the schedule matches
    next_attempt_at      timestamptz not null default now(),  -- backoff after a failure
    attempts             integer not null default 0,  -- failed attempts in a row
    status               text not null default 'active' check (status in ('active', 'failing')),
    last_error           text,
    last_notified_at     timestamptz,
    created_at           timestamptz not null default now(),
    foreign key (cooperative_id, query_name)
        references epcis_named_queries (cooperative_id, name) on delete cascade,
    check (stream = (schedule is null)),
    check (stream or next_run_at is not null),
    check ((cursor_time is null) = (cursor_id is null))
);
create index epcis_subscriptions_query_idx
    on epcis_subscriptions (cooperative_id, query_name, created_at, id);
create index epcis_subscriptions_due_idx on epcis_subscriptions (next_attempt_at);
