-- EPCIS 2.0 capture and query over GS1's REST bindings (api/routes_epcis.py,
-- trace/epcis_capture.py, trace/epcis_query.py). Until organisations exist, the tenant
-- that captures and queries is a cooperative: each row belongs to one and is only ever
-- read with its id.

-- A capture job: POST /epcis/capture stores the document here and answers 202 at once;
-- the API's capture worker processes pending jobs (oldest first, FOR UPDATE SKIP LOCKED,
-- so a restart or a second API process never loses or doubles one) and then drops the
-- document: its events are in epcis_events. `errors`: the bindings' RFC 7807 problems,
-- one per refused event.
create table epcis_captures (
    id               uuid primary key default gen_random_uuid(),
    cooperative_id   uuid not null references cooperatives (id) on delete cascade,
    api_key_id       uuid references api_keys (id) on delete set null,
    error_behaviour  text not null check (error_behaviour in ('rollback', 'proceed')),
    state            text not null default 'pending' check (state in ('pending', 'done')),
    success          boolean not null default true,
    document         bytea,  -- the body as received (JSON: jsonb cannot hold U+0000)
    event_count      integer not null check (event_count >= 0),
    stored_count     integer not null default 0,
    known_count      integer not null default 0,  -- already captured: not stored again
    errors           jsonb not null default '[]',
    chain_seq        bigint,  -- the capture's event in the cooperative's hash chain
    created_at       timestamptz not null default now(),
    finished_at      timestamptz,
    check ((state = 'done') = (finished_at is not null)),
    check (state = 'pending' or document is null)
);
-- GET /epcis/capture lists a tenant's jobs newest first; the worker finds pending ones
create index epcis_captures_coop_idx on epcis_captures (cooperative_id, created_at desc, id desc);
create index epcis_captures_pending_idx on epcis_captures (created_at) where state = 'pending';

-- Captured events, one row each, as captured (`event`, with the eventID the server gave
-- one that had none, and the capturing document's @context when it had namespaces of its
-- own) and with the fields the query parameters filter on beside it. Identifiers in the
-- columns are canonical (EPC URNs and Digital Links alike as constrained canonical Digital
-- Links, trace/epcis_hash.py canonical_id), so a query by either form finds both; CBV
-- terms are bare words (`shipping`), other vocabulary full URIs. `any_epcs` and
-- `any_classes` gather every EPC and every class of the event for MATCH_anyEPC and
-- MATCH_anyEPCClass, and through their GIN indexes narrow the other MATCH_ parameters
-- too. An eventID is unique per tenant (capturing a known one again stores nothing);
-- `hash` is the CBV 2.0 event hash, also for events that came with an eventID.
create table epcis_events (
    id                 bigint generated always as identity primary key,
    cooperative_id     uuid not null references cooperatives (id) on delete cascade,
    event_id           text not null,
    capture_id         uuid references epcis_captures (id) on delete set null,
    event_type         text not null,
    event_time         timestamptz not null,
    record_time        timestamptz not null default now(),
    action             text,
    biz_step           text,
    disposition        text,
    read_point         text,
    biz_location       text,
    transformation_id  text,
    parent_id          text,
    epcs               text[] not null default '{}',  -- epcList, childEPCs
    input_epcs         text[] not null default '{}',
    output_epcs        text[] not null default '{}',
    any_epcs           text[] not null default '{}',  -- the three and parentID
    epc_classes        text[] not null default '{}',  -- quantityList, childQuantityList
    input_classes      text[] not null default '{}',
    output_classes     text[] not null default '{}',
    any_classes        text[] not null default '{}',
    hash               text not null,
    event              jsonb not null,
    unique (cooperative_id, event_id)
);
-- the two orders (and time windows) of GET /epcis/events, keyset-paged on (time, id)
create index epcis_events_time_idx on epcis_events (cooperative_id, event_time, id);
create index epcis_events_record_idx on epcis_events (cooperative_id, record_time, id);
create index epcis_events_any_epcs_idx on epcis_events using gin (any_epcs);
create index epcis_events_any_classes_idx on epcis_events using gin (any_classes);
create index epcis_events_transformation_idx on epcis_events (cooperative_id, transformation_id)
    where transformation_id is not null;
create index epcis_events_capture_idx on epcis_events (capture_id);

-- How far each cooperative's own trail has been published into epcis_events: the EPCIS
-- export (trace/epcis.py) of the lots its chain events name (harvests in cherry lots,
-- processing steps, packing, the plots' sensor summaries), stored like captured events
-- but without a capture (capture_id null), so that they are queried the same way. A
-- cooperative is enrolled (mark 0) by its first EPCIS query; the API's capture worker
-- moves the mark forward (trace/epcis_capture.py publish_own_events).
create table epcis_own_marks (
    cooperative_id  uuid primary key references cooperatives (id) on delete cascade,
    chain_seq       bigint not null
);
