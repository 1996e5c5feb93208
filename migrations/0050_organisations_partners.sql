-- Organisations and their trading partners (issue 14, items 1 and 2).
--
-- Every tenant is an organisation: a producer group (a cooperative), a processor or mill,
-- an exporter, an importer, a roaster or a retailer, or several of these. The table
-- `cooperatives` IS the organisations table and `cooperative_id` stays the tenant id in
-- every table (hundreds of references, released queries and signed chain events name
-- it): the docs say "organisation", the schema and the code keep the old name, and the
-- view `organisations` below reads the rows under the new one. Each organisation keeps
-- its own API keys, hash chain and signing key, as each cooperative did.
--
-- Existing cooperatives become producer_group organisations with their rows unchanged
-- (the default of `roles`); their public name is their name until they set another.

alter table cooperatives
    add column roles text[] not null default '{producer_group}'
        constraint cooperatives_roles_check check (
            cardinality(roles) >= 1 and cardinality(roles) <= 6
            and array_ndims(roles) = 1
            and roles <@ '{producer_group,processor,exporter,importer,roaster,retailer}'::text[]
        ),
    add column public_name text
        constraint cooperatives_public_name_check check (
            public_name ~ '\S' and char_length(public_name) <= 200
        ),
    -- a GS1 Global Location Number: 13 digits; its check digit is verified by the domain
    -- (trace/organisations.py, with biip) before it is stored
    add column gln text
        constraint cooperatives_gln_check check (gln ~ '^[0-9]{13}$')
        constraint cooperatives_gln_key unique;

comment on table cooperatives is
    'The organisations (tenants): producer groups (cooperatives), processors, exporters,'
    ' importers, roasters, retailers. Named cooperatives, and referenced as cooperative_id,'
    ' from before organisations had roles (migration 0050); read them as the view'
    ' organisations.';
comment on column cooperatives.roles is
    'What the organisation does in the chain, one or more of producer_group, processor,'
    ' exporter, importer, roaster, retailer; set by the platform admin only. Only a'
    ' producer_group registers farms (and so plots, trees and harvests).';
comment on column cooperatives.public_name is
    'The name other organisations and buyers see; null: its name.';
comment on column cooperatives.gln is
    'Its GS1 Global Location Number (13 digits, check digit verified), if it has one.';

create view organisations as
select c.id, c.code, c.name, coalesce(c.public_name, c.name) as public_name, c.country,
       c.province, c.roles, c.gln, c.created_at
from cooperatives c;

comment on view organisations is
    'Every tenant as an organisation: the rows of cooperatives (whose id is the'
    ' cooperative_id of every other table), with the public name resolved.';

-- Trading partners. One organisation proposes, the other accepts or declines; either ends
-- it. At most one open (proposed or active) partnership per pair of organisations;
-- declined and ended ones are kept as history. `scopes`: what each may see of the other's
-- upstream data (public_provenance: the public provenance of shipped lots;
-- eudr_geolocation: the plots of shipped lots, as an EU importer needs them). No scope
-- reaches a farm's personal data (farm_private), and none can be added without a
-- migration. Every change is also an event in both organisations' chains
-- (trace/partners.py).
create table organisation_partners (
    id           uuid primary key default gen_random_uuid(),
    proposer_id  uuid not null references cooperatives (id) on delete cascade,
    invitee_id   uuid not null references cooperatives (id) on delete cascade,
    scopes       text[] not null default '{public_provenance,eudr_geolocation}'
                 constraint organisation_partners_scopes_check check (
                     cardinality(scopes) >= 1 and cardinality(scopes) <= 2
                     and array_ndims(scopes) = 1
                     and scopes <@ '{public_provenance,eudr_geolocation}'::text[]
                 ),
    status       text not null default 'proposed'
                 check (status in ('proposed', 'active', 'declined', 'ended')),
    proposed_at  timestamptz not null default now(),
    accepted_at  timestamptz,
    declined_at  timestamptz,
    ended_at     timestamptz,
    ended_by     uuid,
    constraint organisation_partners_not_self check (proposer_id <> invitee_id),
    constraint organisation_partners_state_check check (
        case status
            when 'proposed' then accepted_at is null and declined_at is null and ended_at is null
            when 'active' then accepted_at is not null and declined_at is null and ended_at is null
            when 'declined' then accepted_at is null and declined_at is not null
                                 and ended_at is null
            else declined_at is null and ended_at is not null
        end
    ),
    constraint organisation_partners_ended_by_check check (
        (ended_by is null) = (ended_at is null)
        and (ended_by is null or ended_by in (proposer_id, invitee_id))
    )
);

-- one open partnership per pair, whichever of the two proposed it
create unique index organisation_partners_open_pair
    on organisation_partners (least(proposer_id, invitee_id), greatest(proposer_id, invitee_id))
    where status in ('proposed', 'active');
create index organisation_partners_proposer_idx on organisation_partners (proposer_id);
create index organisation_partners_invitee_idx on organisation_partners (invitee_id);
