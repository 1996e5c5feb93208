-- name: broker_reconciler_try_lock
-- Held until the transaction ends: one API process holds the broker to the registry.
select pg_try_advisory_xact_lock(hashtextextended('coffeetrace.broker_reconciler', 0)) as locked;

-- name: broker_reconciler_devices
select id, active from devices;
