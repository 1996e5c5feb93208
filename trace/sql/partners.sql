-- Trading partnerships between organisations (organisation_partners, migration 0050).
-- Every read names the organisation asking (%(viewer)s): a partnership it is not a party
-- to is never found.

-- name: partnership_insert
insert into organisation_partners (proposer_id, invitee_id, scopes)
values (%(proposer_id)s, %(invitee_id)s, %(scopes)s::text[])
returning id, proposed_at as at;

-- name: partnership_open_between
-- The open (proposed or active) partnership of two organisations, whichever proposed it.
select id, status, proposer_id, proposed_at
from organisation_partners
where least(proposer_id, invitee_id) = least(%(a)s::uuid, %(b)s::uuid)
  and greatest(proposer_id, invitee_id) = greatest(%(a)s::uuid, %(b)s::uuid)
  and status in ('proposed', 'active');

-- name: partnership_lock
-- The partnership for a change by %(viewer)s, locked until the transaction ends.
select p.id, p.status, p.scopes, p.proposer_id, p.invitee_id,
       pr.code as proposer_code, iv.code as invitee_code
from organisation_partners p
join cooperatives pr on pr.id = p.proposer_id
join cooperatives iv on iv.id = p.invitee_id
where p.id = %(id)s and %(viewer)s::uuid in (p.proposer_id, p.invitee_id)
for update of p;

-- name: partnership_accept
update organisation_partners set status = 'active', accepted_at = now()
where id = %(id)s and status = 'proposed'
returning accepted_at as at;

-- name: partnership_decline
update organisation_partners set status = 'declined', declined_at = now()
where id = %(id)s and status = 'proposed'
returning declined_at as at;

-- name: partnership_end
update organisation_partners set status = 'ended', ended_at = now(), ended_by = %(by)s
where id = %(id)s and status in ('proposed', 'active')
returning ended_at as at;

-- name: partnerships_of
-- The partnerships of %(viewer)s as it sees them (`partner`: the other side's public
-- profile, as the directory gives it), by id (keyset pages: `after` = the last id of the
-- previous page); only %(id)s when given, only those in %(status)s when given.
select p.id, p.status, p.scopes, pr.code as proposer, iv.code as invitee,
       p.proposer_id = %(viewer)s::uuid as proposed_by_us,
       p.proposed_at, p.accepted_at, p.declined_at, p.ended_at, eb.code as ended_by,
       jsonb_build_object('code', o.code, 'public_name', o.public_name, 'country', o.country,
                          'roles', o.roles, 'gln', o.gln) as partner
from organisation_partners p
join cooperatives pr on pr.id = p.proposer_id
join cooperatives iv on iv.id = p.invitee_id
left join cooperatives eb on eb.id = p.ended_by
join organisations o
  on o.id = case when p.proposer_id = %(viewer)s::uuid then p.invitee_id else p.proposer_id end
where (p.proposer_id = %(viewer)s::uuid or p.invitee_id = %(viewer)s::uuid)
  and (%(id)s::uuid is null or p.id = %(id)s::uuid)
  and (%(status)s::text is null or p.status = %(status)s::text)
  and (%(after)s::uuid is null or p.id > %(after)s::uuid)
order by p.id
limit %(limit)s;

-- name: partnership_active_scopes
-- The scopes of the active partnership of two organisations; no row when they are not
-- partners.
select scopes
from organisation_partners
where least(proposer_id, invitee_id) = least(%(a)s::uuid, %(b)s::uuid)
  and greatest(proposer_id, invitee_id) = greatest(%(a)s::uuid, %(b)s::uuid)
  and status = 'active';
