-- name: insert_api_key
insert into api_keys (cooperative_id, name, role, prefix, token_hash)
values (%(cooperative_id)s, %(name)s, %(role)s, %(prefix)s, %(token_hash)s)
returning id, cooperative_id, name, role, prefix, created_at, last_used_at, revoked_at;

-- name: caller_by_token_hash
select k.id as key_id, k.role, k.cooperative_id, c.code as cooperative_code
from api_keys k join cooperatives c on c.id = k.cooperative_id
where k.token_hash = %(token_hash)s and k.revoked_at is null;

-- name: touch_api_key
update api_keys set last_used_at = now()
where id = %(id)s and (last_used_at is null or last_used_at < now() - interval '1 minute');

-- name: list_api_keys
select id, cooperative_id, name, role, prefix, created_at, last_used_at, revoked_at
from api_keys
where cooperative_id = %(cooperative_id)s and (%(after)s::uuid is null or id > %(after)s::uuid)
order by id
limit %(limit)s;

-- name: revoke_api_key
update api_keys set revoked_at = coalesce(revoked_at, now())
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning id, cooperative_id, name, role, prefix, created_at, last_used_at, revoked_at;
