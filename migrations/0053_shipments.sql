-- Shipments and receipts between trading partners (issue 14, item 3).
--
-- The sender ships kilograms of one or more of its lots to an active partner: they leave
-- the sender's lots at once (lots.remaining_kg, under the lot's row lock, as a processing
-- step takes them), and stay with the shipment while it is in transit. The receiver
-- accepts it with what it weighed and measured, which creates the receiver's lots, each
-- made by a "receiving" transformation of the receiver whose inputs are the shipped kg of
-- the sender's lots (so the genealogy walks across organisations unchanged); or it
-- rejects it with a reason, and the kg return to the sender's lots. Every change is a
-- signed event in the chain of the organisation that makes it, and where it changes the
-- other party's records, in both chains (trace/shipments.py); the receipt records the
-- hash of the sender's shipment event. trace/shipment_checks.py holds these rows to their
-- events.

create table shipments (
    id                   uuid primary key default gen_random_uuid(),
    sender_id            uuid not null references cooperatives (id) on delete cascade,
    receiver_id          uuid not null references cooperatives (id) on delete cascade,
    status               text not null default 'in_transit'
                         check (status in ('in_transit', 'accepted', 'rejected')),
    departed_at          timestamptz not null,
    departure_place      text not null
                         check (departure_place ~ '\S' and char_length(departure_place) <= 200),
    carrier              text check (carrier ~ '\S' and char_length(carrier) <= 200),
    -- a truck's plate, a vessel and voyage, a flight
    vehicle              text check (vehicle ~ '\S' and char_length(vehicle) <= 100),
    -- ISO 6346: owner code, category, serial, check digit (verified by the domain)
    container            text check (container ~ '^[A-Z]{3}[UJZ][0-9]{7}$'),
    seal                 text check (seal ~ '\S' and char_length(seal) <= 40),
    -- [{"type", "number", "sha256", "url"?}]: bill of lading, invoice, packing list...
    documents            jsonb not null default '[]'::jsonb
                         check (jsonb_typeof(documents) = 'array'),
    -- the sale, as an EPCIS business transaction: a CBV type (po, inv, ...) and its id
    sale_type            text check (sale_type in ('bol', 'desadv', 'inv', 'pedigree', 'po',
                                                    'poc', 'prodorder', 'recadv', 'rma',
                                                    'testprd', 'testres', 'upevt')),
    sale_id              text check (sale_id ~ '\S' and char_length(sale_id) <= 200),
    shipped_kg           numeric(14, 3) not null check (shipped_kg > 0),
    sent_event_seq       bigint,                -- shipment_sent, in the sender's chain
    created_at           timestamptz not null default now(),
    -- the receipt (accepted)
    received_at          timestamptz,
    arrival_place        text check (arrival_place ~ '\S' and char_length(arrival_place) <= 200),
    received_kg          numeric(14, 3) check (received_kg > 0),
    receipt_measurements jsonb check (jsonb_typeof(receipt_measurements) = 'object'),
    receipt_documents    jsonb check (jsonb_typeof(receipt_documents) = 'array'),
    -- the tolerance in force when it was accepted, and whether the loss went beyond it
    loss_tolerance_pct   numeric(6, 3) check (loss_tolerance_pct >= 0),
    loss_flagged         boolean,
    -- the rejection
    rejected_at          timestamptz,
    reject_reason        text check (reject_reason ~ '\S' and char_length(reject_reason) <= 500),
    -- the outcome's event in the receiver's chain (shipment_accepted or shipment_rejected)
    -- and its copy in the sender's
    outcome_event_seq    bigint,
    sender_outcome_event_seq bigint,
    constraint shipments_not_self check (sender_id <> receiver_id),
    constraint shipments_sale_check check ((sale_type is null) = (sale_id is null)),
    constraint shipments_state_check check (
        case status
            when 'in_transit' then received_at is null and received_kg is null
                                   and rejected_at is null and reject_reason is null
            when 'accepted' then received_at is not null and received_kg is not null
                                 and arrival_place is not null
                                 and receipt_measurements is not null
                                 and receipt_documents is not null
                                 and loss_tolerance_pct is not null and loss_flagged is not null
                                 and rejected_at is null and reject_reason is null
            else rejected_at is not null and reject_reason is not null
                 and received_at is null and received_kg is null
        end
    )
);
-- each side's list, in keyset pages by id
create index shipments_sender_idx on shipments (sender_id, id);
create index shipments_receiver_idx on shipments (receiver_id, id);

comment on table shipments is
    'Shipments of kg of the sender''s lots to a trading partner: in transit, then accepted'
    ' (the receipt, which made the receiver''s lots) or rejected (the kg went back to the'
    ' sender''s lots). Each change is a signed chain event (trace/shipments.py).';

-- What the shipment takes from each of the sender's lots, and what the receiver weighed of
-- it and made of it.
create table shipment_lines (
    shipment_id      uuid not null references shipments (id) on delete cascade,
    line_no          integer not null check (line_no between 1 and 500),
    lot_id           uuid not null references lots (id),
    kg               numeric(14, 3) not null check (kg > 0),
    received_kg      numeric(14, 3) check (received_kg > 0),
    measurements     jsonb check (jsonb_typeof(measurements) = 'object'),
    loss_flagged     boolean,
    receiver_lot_id  uuid references lots (id),
    primary key (shipment_id, line_no),
    unique (shipment_id, lot_id),
    constraint shipment_lines_receipt_check check (
        (received_kg is null) = (receiver_lot_id is null)
        and (received_kg is null) = (loss_flagged is null)
        and (received_kg is null) = (measurements is null)
    )
);
-- the kg of a lot in transit, and the shipments a lot took part in (either side)
create index shipment_lines_lot_idx on shipment_lines (lot_id);
create index shipment_lines_receiver_lot_idx on shipment_lines (receiver_lot_id)
    where receiver_lot_id is not null;

-- A shipment followed in transit: loaded at the port of departure, transshipped,
-- discharged at the port of arrival, cleared by customs... recorded by either party.
create table shipment_transport_events (
    id           uuid primary key default gen_random_uuid(),
    shipment_id  uuid not null references shipments (id) on delete cascade,
    recorded_by  uuid not null references cooperatives (id) on delete cascade,
    kind         text not null
                 check (kind in ('departure_port', 'transshipment', 'arrival_port',
                                 'customs_cleared', 'inland_transport', 'other')),
    occurred_at  timestamptz not null,
    place        text not null check (place ~ '\S' and char_length(place) <= 200),
    note         text check (note ~ '\S' and char_length(note) <= 500),
    event_seq    bigint,                    -- shipment_transport, in the recorder's chain
    created_at   timestamptz not null default now()
);
create index shipment_transport_events_shipment_idx
    on shipment_transport_events (shipment_id, occurred_at, id);
