-- name: chain_cooperative_by_code
select id, code from cooperatives where code = %(code)s;

-- name: chain_event_position
select seq, position, hash from trace_events
where cooperative_id = %(cooperative_id)s and seq = %(seq)s;
