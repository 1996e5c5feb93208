-- Console users, sessions and failed logins (api/console/users.py, sessions.py).

-- name: console_insert_user
insert into console_users (cooperative_id, username, display_name, role, password_hash)
values (%(cooperative_id)s, %(username)s, %(display_name)s, %(role)s, %(password_hash)s)
returning id, cooperative_id, username, display_name, role, created_at, disabled_at;

-- name: console_user_for_login
select u.id, u.cooperative_id, u.username, u.display_name, u.role, u.password_hash,
       u.disabled_at, c.code as cooperative_code
from console_users u join cooperatives c on c.id = u.cooperative_id
where c.code = %(cooperative_code)s and u.username = %(username)s;

-- name: console_set_password_hash
update console_users set password_hash = %(password_hash)s
where id = %(id)s and password_hash = %(old_hash)s;

-- name: console_list_users
select id, username, display_name, role, created_at, password_changed_at, disabled_at,
       (select count(*) from console_sessions s
        where s.user_id = u.id and s.revoked_at is null and s.expires_at > now()) as sessions
from console_users u
where cooperative_id = %(cooperative_id)s
order by username;

-- name: console_get_user
select id, cooperative_id, username, display_name, role, created_at, disabled_at
from console_users
where id = %(id)s and cooperative_id = %(cooperative_id)s;

-- name: console_reset_password
update console_users set password_hash = %(password_hash)s, password_changed_at = now()
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning id, username;

-- name: console_set_disabled
update console_users
set disabled_at = case when %(disabled)s then coalesce(disabled_at, now()) else null end
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning id, username, disabled_at;

-- name: console_revoke_user_sessions
update console_sessions set revoked_at = now()
where user_id = %(user_id)s and revoked_at is null;

-- name: console_insert_session
insert into console_sessions (user_id, token_hash, csrf_token, client_addr, expires_at)
values (%(user_id)s, %(token_hash)s, %(csrf_token)s, %(client_addr)s,
        now() + make_interval(secs => %(max_age_s)s))
returning id;

-- name: console_session_by_token_hash
-- A live session of an enabled user: not revoked, not expired, not idle too long.
select s.id as session_id, s.csrf_token, s.last_seen_at, u.id as user_id, u.username,
       u.display_name, u.role, u.cooperative_id, c.code as cooperative_code,
       c.name as cooperative_name
from console_sessions s
join console_users u on u.id = s.user_id
join cooperatives c on c.id = u.cooperative_id
where s.token_hash = %(token_hash)s and s.revoked_at is null and s.expires_at > now()
  and s.last_seen_at > now() - make_interval(secs => %(idle_s)s)
  and u.disabled_at is null;

-- name: console_touch_session
update console_sessions set last_seen_at = now()
where id = %(id)s and last_seen_at < now() - interval '1 minute';

-- name: console_revoke_session
update console_sessions set revoked_at = coalesce(revoked_at, now()) where id = %(id)s;

-- name: console_list_sessions
select s.id, u.username, s.client_addr, s.created_at, s.last_seen_at, s.expires_at
from console_sessions s join console_users u on u.id = s.user_id
where u.cooperative_id = %(cooperative_id)s and s.revoked_at is null and s.expires_at > now()
order by s.last_seen_at desc
limit %(limit)s;

-- name: console_revoke_coop_session
update console_sessions s set revoked_at = coalesce(s.revoked_at, now())
from console_users u
where s.id = %(id)s and u.id = s.user_id and u.cooperative_id = %(cooperative_id)s
returning s.id;

-- name: console_login_failures
-- Failures within the window: of this account, and from this address.
select
    (select count(*) from console_login_failures
     where account = %(account)s and at > now() - make_interval(secs => %(window_s)s))
        as of_account,
    (select count(*) from console_login_failures
     where client_addr = %(client_addr)s and at > now() - make_interval(secs => %(window_s)s))
        as of_address;

-- name: console_record_login_failure
with gone as (
    delete from console_login_failures where at < now() - make_interval(secs => %(window_s)s)
)
insert into console_login_failures (account, client_addr) values (%(account)s, %(client_addr)s);

-- name: console_clear_login_failures
delete from console_login_failures where account = %(account)s;
