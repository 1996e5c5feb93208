-- Captured EPCIS events that joined the trail (trace/epcis_trail.py): what each made of
-- the platform's records. A TransformationEvent on the capturing organisation's lots
-- made a processing step (`transformation_id`, its new lots in `lot_ids`, the output
-- classes it named in `classes`, by which later events find those lots); a shipping
-- ObjectEvent made a shipment, a receiving one accepted it (`shipment_id`, the lots
-- shipped or received); an ObjectEvent with sensor data on lots is an observation of
-- them (`lot_ids`). One row per captured event, recorded in the capture's chain event
-- (`chain_seq`: its entry for the eventID carries the row's facts), so the chain audit
-- names a row edited, deleted or inserted behind the application's back.
create table epcis_trail (
    id                 bigint generated always as identity primary key,
    cooperative_id     uuid not null references cooperatives (id) on delete cascade,
    event_id           text not null,
    capture_id         uuid references epcis_captures (id) on delete set null,
    kind               text not null
                       check (kind in ('transformation', 'shipment_sent',
                                       'shipment_accepted', 'observation')),
    transformation_id  uuid references transformations (id),
    shipment_id        uuid references shipments (id),
    lot_ids            uuid[] not null default '{}',
    classes            text[] not null default '{}',
    chain_seq          bigint not null,
    created_at         timestamptz not null default now(),
    unique (cooperative_id, event_id),
    check ((kind = 'transformation') = (transformation_id is not null)),
    check ((kind in ('shipment_sent', 'shipment_accepted')) = (shipment_id is not null))
);
-- a lot's observations (its EPCIS export), and the classes a later event names
create index epcis_trail_lots_idx on epcis_trail using gin (lot_ids);
create index epcis_trail_classes_idx on epcis_trail using gin (classes);
create index epcis_trail_transformation_idx on epcis_trail (transformation_id)
    where transformation_id is not null;
