-- Readiness (api/health.py).

-- name: readiness_ping
select 1;
