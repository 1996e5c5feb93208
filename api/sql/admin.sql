-- Platform-admin keys (platform_admin_keys, migration 0044): the credential of the admin
-- API (/admin/...), apart from every cooperative's api_keys.

-- name: insert_platform_admin_key
insert into platform_admin_keys (name, prefix, token_hash)
values (%(name)s, %(prefix)s, %(token_hash)s)
returning id, name, prefix, created_at, last_used_at, revoked_at;

-- name: platform_admin_by_token_hash
select id, name from platform_admin_keys
where token_hash = %(token_hash)s and revoked_at is null;

-- name: touch_platform_admin_key
update platform_admin_keys set last_used_at = now()
where id = %(id)s and (last_used_at is null or last_used_at < now() - interval '1 minute');

-- name: list_platform_admin_keys
select id, name, prefix, created_at, last_used_at, revoked_at
from platform_admin_keys
order by created_at, id;

-- name: revoke_platform_admin_key
update platform_admin_keys set revoked_at = coalesce(revoked_at, now())
where id = %(id)s
returning id, name, prefix, created_at, last_used_at, revoked_at;
