-- name: checkpoint_chain_head
select seq, hash, position from trace_events
where cooperative_id = %(cooperative_id)s
order by seq desc limit 1;

-- name: insert_checkpoint
insert into chain_checkpoints (cooperative_id, tree_size, root_hash, head_seq, issued_at, body,
                               signature)
values (%(cooperative_id)s, %(tree_size)s, %(root_hash)s, %(head_seq)s, %(issued_at)s, %(body)s,
        %(signature)s)
returning id, body, signature;

-- name: latest_checkpoint
select id, body, signature from chain_checkpoints
where cooperative_id = %(cooperative_id)s
order by tree_size desc, id desc limit 1;

-- name: checkpoint_history
select id, body, signature from chain_checkpoints
where cooperative_id = %(cooperative_id)s and id < %(before)s
order by id desc limit %(limit)s;

-- name: cooperatives_with_events
select distinct cooperative_id from trace_events;

-- name: checkpoints_due
-- Chains with events after their newest checkpoint.
select e.cooperative_id from (
    select cooperative_id, max(position) + 1 as size from trace_events group by cooperative_id
) e
where e.size > coalesce((select max(c.tree_size) from chain_checkpoints c
                         where c.cooperative_id = e.cooperative_id), 0);
