-- The EPCIS subscription deliverer (api/epcis_deliverer.py).

-- name: epcis_deliverer_try_lock
-- A session lock, held by the deliverer's own connection for a round: one API process
-- delivers at a time, and each round commits every cursor on its own.
select pg_try_advisory_lock(hashtextextended('coffeetrace.epcis_deliverer', 0)) as locked;

-- name: epcis_deliverer_unlock
select pg_advisory_unlock(hashtextextended('coffeetrace.epcis_deliverer', 0)) as unlocked;
