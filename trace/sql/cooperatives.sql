-- Cooperatives and their GS1 company prefixes (cooperative_gs1_prefixes, migration 0044).
-- Read across every cooperative: the platform admin's, never a cooperative key's.

-- name: gs1_prefixes_of_cooperative
select prefix from cooperative_gs1_prefixes
where cooperative_id = %(cooperative_id)s
order by prefix;

-- name: lock_gs1_prefixes
-- Prefixes are assigned one at a time across the platform, so that two overlapping ones
-- never both pass the overlap check; released at commit.
select pg_advisory_xact_lock(hashtextextended('coffeetrace.gs1_prefixes', 0));

-- name: overlapping_gs1_prefixes
-- The prefixes held that equal, contain or are contained in %(prefix)s.
select p.prefix, p.cooperative_id, c.code as cooperative_code
from cooperative_gs1_prefixes p join cooperatives c on c.id = p.cooperative_id
where starts_with(p.prefix, %(prefix)s) or starts_with(%(prefix)s, p.prefix)
order by p.prefix;

-- name: insert_gs1_prefix
insert into cooperative_gs1_prefixes (cooperative_id, prefix)
values (%(cooperative_id)s, %(prefix)s)
returning prefix;

-- name: delete_gs1_prefix
delete from cooperative_gs1_prefixes
where cooperative_id = %(cooperative_id)s and prefix = %(prefix)s
returning prefix;

-- name: list_cooperatives
-- Keyset pages by code (`after` = last code of the previous page).
select c.id, c.code, c.name, c.country, c.province, c.created_at,
       array(select p.prefix from cooperative_gs1_prefixes p
             where p.cooperative_id = c.id order by p.prefix) as gs1_prefixes
from cooperatives c
where (%(after)s::text is null or c.code > %(after)s::text)
order by c.code
limit %(limit)s;

-- name: cooperative_with_prefixes
select c.id, c.code, c.name, c.country, c.province, c.created_at,
       array(select p.prefix from cooperative_gs1_prefixes p
             where p.cooperative_id = c.id order by p.prefix) as gs1_prefixes
from cooperatives c
where c.code = %(code)s;
