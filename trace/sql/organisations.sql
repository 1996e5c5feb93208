-- Organisations (migration 0050): the rows of cooperatives, read through the view
-- organisations (the public name resolved), with their GS1 company prefixes
-- (cooperative_gs1_prefixes, migration 0044).

-- name: organisation_profile
-- The organisation's own profile: everything but its keys.
select o.id, o.code, o.name, o.public_name, o.country, o.province, o.roles, o.gln,
       o.created_at,
       array(select p.prefix from cooperative_gs1_prefixes p
             where p.cooperative_id = o.id order by p.prefix) as gs1_prefixes
from organisations o
where o.id = %(id)s;

-- name: organisation_by_code_or_id
-- By its code, or by its id (%(id)s null when what was given is not a UUID). A code may
-- look like a UUID: the organisation with that code comes first.
select o.id, o.code, o.public_name, o.country, o.roles, o.gln
from organisations o
where o.code = %(code)s::text or o.id = %(id)s::uuid
order by coalesce(o.code = %(code)s::text, false) desc
limit 1;

-- name: organisation_roles
select roles from cooperatives where id = %(id)s;

-- name: organisation_directory
-- Public profiles, by code (keyset pages: `after` = the last code of the previous page).
select o.code, o.public_name, o.country, o.roles, o.gln
from organisations o
where (%(role)s::text is null or %(role)s::text = any (o.roles))
  and (%(after)s::text is null or o.code > %(after)s::text)
order by o.code
limit %(limit)s;

-- name: update_organisation_profile
-- Each field changes only when its set_* flag is true (PATCH: an absent field is kept).
update cooperatives set
    public_name = case when %(set_public_name)s then %(public_name)s::text else public_name end,
    country = case when %(set_country)s then %(country)s::text else country end,
    gln = case when %(set_gln)s then %(gln)s::text else gln end
where id = %(id)s
returning id;

-- name: set_organisation_roles
update cooperatives set roles = %(roles)s::text[]
where id = %(id)s
returning id;

-- name: organisation_has_farms
select exists (select 1 from farms where cooperative_id = %(id)s) as has_farms;
