-- name: checkpointer_try_lock
-- Held until the transaction ends: one API process issues a round's checkpoints.
select pg_try_advisory_xact_lock(hashtextextended('coffeetrace.checkpointer', 0)) as locked;
