-- External lots (issue 14, item 4): coffee from outside the platform that an organisation
-- declares with an origin claim (country, producer or supplier, reference documents), so
-- that it can go into a blend under mass balance and appear in the backward trace as its
-- own share.
--
-- An external lot is a lot like any other (lots: code, kind, kg, remaining kg, an optional
-- product of the organisation) made by no transformation and fed by no harvest; this
-- table holds its claim. Its "lot_created" chain event (trace/external_lots.py) records
-- the lot and the claim, and verification holds both rows to it.

create table external_lots (
    lot_id          uuid primary key references lots (id) on delete cascade,
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    -- ISO 3166-1 alpha-2 (checked against CLDR's list by the domain)
    origin_country  text not null check (origin_country ~ '^[A-Z]{2}$'),
    producer        text not null check (producer ~ '\S' and char_length(producer) <= 200),
    supplier        text check (supplier ~ '\S' and char_length(supplier) <= 200),
    -- [{"type", "number", "sha256", "url"?}]: certificate of origin, contract, invoice...
    documents       jsonb not null default '[]'::jsonb check (jsonb_typeof(documents) = 'array'),
    -- when the organisation took the coffee in: a step on the lot cannot be earlier
    received_at     timestamptz not null,
    event_seq       bigint,
    created_at      timestamptz not null default now()
);
-- an organisation's external lots, in keyset pages by id
create index external_lots_cooperative_idx on external_lots (cooperative_id, lot_id);

comment on table external_lots is
    'Origin claims of lots from outside the platform (no harvests, no transformation):'
    ' country, producer, supplier, documents; each recorded by a signed lot_created event'
    ' (trace/external_lots.py).';
