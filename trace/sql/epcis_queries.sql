-- EPCIS named queries and their subscriptions (trace/epcis_queries.py,
-- trace/epcis_subscriptions.py). Every query of the API names its tenant
-- (cooperative_id); only the deliverer's look for due subscriptions spans tenants.

-- name: epcis_named_query_insert
insert into epcis_named_queries (cooperative_id, name, query)
values (%(cooperative_id)s, %(name)s, %(query)s)
on conflict (cooperative_id, name) do nothing
returning name, query, created_at;

-- name: epcis_named_query_get
select name, query, created_at
from epcis_named_queries
where cooperative_id = %(cooperative_id)s and name = %(name)s;

-- name: epcis_named_query_list
-- Keyset-paged by name.
select name, query, created_at
from epcis_named_queries
where cooperative_id = %(cooperative_id)s
  and (%(after)s::text is null or name > %(after)s::text)
order by name
limit %(limit)s;

-- name: epcis_named_query_delete
-- Its subscriptions go with it (on delete cascade): the bindings' "forcibly unsubscribes".
delete from epcis_named_queries
where cooperative_id = %(cooperative_id)s and name = %(name)s
returning name;

-- name: epcis_subscription_insert
insert into epcis_subscriptions (cooperative_id, query_name, dest, signature_token, stream,
                                 schedule, report_if_empty, initial_record_time, next_run_at)
values (%(cooperative_id)s, %(query_name)s, %(dest)s, %(signature_token)s, %(stream)s,
        %(schedule)s, %(report_if_empty)s, coalesce(%(initial_record_time)s, now()),
        %(next_run_at)s)
returning *;

-- name: epcis_subscription_get
select *
from epcis_subscriptions
where cooperative_id = %(cooperative_id)s and query_name = %(query_name)s and id = %(id)s;

-- name: epcis_subscription_list
select *
from epcis_subscriptions
where cooperative_id = %(cooperative_id)s and query_name = %(query_name)s
order by created_at, id;

-- name: epcis_subscription_delete
delete from epcis_subscriptions
where cooperative_id = %(cooperative_id)s and query_name = %(query_name)s and id = %(id)s
returning id;

-- name: epcis_subscriptions_due
-- Those whose backoff is over: streaming ones always, scheduled ones once their time came.
select s.*, q.query
from epcis_subscriptions s
join epcis_named_queries q on q.cooperative_id = s.cooperative_id and q.name = s.query_name
where s.next_attempt_at <= now() and (s.stream or s.next_run_at <= now())
order by s.next_attempt_at, s.id
limit %(limit)s;

-- name: epcis_record_horizon
-- Record times below this are final: an event's record_time is its inserting
-- transaction's start (now()), so a transaction still open (in any session of this
-- database but the caller's) can only add events at or after its own start. Delivering
-- only below it keeps record-time order without skipping an event that commits late.
select coalesce(min(a.xact_start), clock_timestamp()) as horizon
from pg_stat_activity a
where a.datname = current_database()
  and a.pid <> pg_backend_pid()
  and a.backend_type = 'client backend'
  and a.xact_start is not null;

-- name: epcis_subscription_delivered
-- A 2xx: the cursor moves past the delivered events (unchanged for an empty report).
update epcis_subscriptions
set cursor_time = coalesce(%(cursor_time)s, cursor_time),
    cursor_id = coalesce(%(cursor_id)s, cursor_id),
    attempts = 0, status = 'active', last_error = null, last_notified_at = now(),
    next_attempt_at = now()
where id = %(id)s;

-- name: epcis_subscription_scheduled
-- A scheduled subscription's run ended (everything due delivered): its next time.
update epcis_subscriptions set next_run_at = %(next_run_at)s where id = %(id)s;

-- name: epcis_subscription_failed
update epcis_subscriptions
set attempts = attempts + 1,
    status = case when attempts + 1 >= %(failing_after)s then 'failing' else status end,
    last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(backoff_s)s)
where id = %(id)s
returning attempts, status;

-- name: epcis_subscription_looked
-- Nothing was due: to the back of the queue of due subscriptions, so that a round's limit
-- never leaves the same ones out (a failing one keeps its backoff).
update epcis_subscriptions set next_attempt_at = now() where id = %(id)s and attempts = 0;
