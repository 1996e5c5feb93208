-- Registry: cooperatives (tenants), their products, farms, plots, trees and devices.
-- Public identifiers (farm code, tree public_id) are kept apart from personal data
-- (farm_private), which never leaves the cooperative's authenticated API.

create table cooperatives (
    id                  uuid primary key default gen_random_uuid(),
    code                text not null unique check (code ~ '^[a-z0-9][a-z0-9-]{1,39}$'),
    name                text not null,
    country             char(2) not null default 'VN',
    province            text,
    gs1_company_prefix  text check (gs1_company_prefix ~ '^[0-9]{6,12}$'),
    created_at          timestamptz not null default now()
);

-- A product the cooperative sells, with the GTIN printed in its Digital Link QR codes.
create table products (
    id              uuid primary key default gen_random_uuid(),
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    name            text not null,
    kind            text not null default 'green'
                    check (kind in ('cherry', 'dried_cherry', 'green', 'roasted', 'packed')),
    gtin            char(14) unique check (gtin ~ '^[0-9]{14}$'),
    created_at      timestamptz not null default now(),
    unique (cooperative_id, name)
);

create table farms (
    id                    uuid primary key default gen_random_uuid(),
    cooperative_id        uuid not null references cooperatives (id) on delete cascade,
    code                  text not null,            -- public pseudonymous code
    display_name          text,                     -- shown publicly only with consent
    display_name_consent  boolean not null default false,
    district              text,
    commune               text,
    created_at            timestamptz not null default now(),
    unique (cooperative_id, code)
);

-- Personal data (Law 91/2025/QH15): never rendered on public pages.
create table farm_private (
    farm_id               uuid primary key references farms (id) on delete cascade,
    owner_name            text,
    phone                 text,
    national_id           text,
    address               text,
    data_consent          boolean not null default false,
    consent_at            timestamptz,
    consent_withdrawn_at  timestamptz
);

create table plots (
    id                 uuid primary key default gen_random_uuid(),
    cooperative_id     uuid not null references cooperatives (id) on delete cascade,
    farm_id            uuid not null references farms (id) on delete cascade,
    code               text not null,
    geometry           jsonb not null,              -- GeoJSON Polygon or Point, [lon, lat]
    area_ha            numeric(10, 4) not null check (area_ha > 0),
    altitude_m         integer check (altitude_m between -100 and 3000),
    growing_area_code  text,                        -- "ma so vung trong"
    district           text,
    centroid_lon       double precision not null,
    centroid_lat       double precision not null,
    created_at         timestamptz not null default now(),
    unique (cooperative_id, code)
);
create index plots_farm_idx on plots (farm_id);

create table trees (
    id              uuid primary key default gen_random_uuid(),
    -- ASCII identifiers: "C" collation keeps their indexes cheap to build and search
    public_id       text collate "C" not null unique, -- random 128-bit, not enumerable
    tag_code        text collate "C" not null,        -- printed on the tree's tag
    cooperative_id  uuid not null references cooperatives (id) on delete cascade,
    plot_id         uuid not null references plots (id) on delete cascade,
    lon             double precision,
    lat             double precision,
    species         text not null default 'Coffea canephora',
    cultivar        text,
    planted_on      date,
    status          text not null default 'active'
                    check (status in ('active', 'stumped', 'replanted', 'removed', 'dead')),
    created_at      timestamptz not null default now(),
    unique (cooperative_id, tag_code)
);
create index trees_plot_idx on trees (plot_id);

-- A device's id is also its MQTT client id, username and topic level.
create table devices (
    id               text primary key check (id ~ '^[A-Za-z0-9_-]{3,64}$'),
    cooperative_id   uuid not null references cooperatives (id) on delete cascade,
    kind             text not null
                     check (kind in ('soil_node', 'weather_station', 'harvest_scale', 'phone')),
    plot_id          uuid references plots (id) on delete set null,
    tree_id          uuid references trees (id) on delete set null,
    credential_hash  text not null,
    active           boolean not null default true,
    registered_at    timestamptz not null default now()
);
create index devices_coop_idx on devices (cooperative_id);
