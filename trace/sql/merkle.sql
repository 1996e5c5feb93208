-- name: merkle_lock_chain
-- The cooperative's chain lock: the same key as chain.sql's lock_chain, so building nodes
-- never races an appender. Re-entrant within a transaction; released at commit.
select pg_advisory_xact_lock(hashtextextended('coffeetrace.trace_chain:' || %(cooperative_id)s::text, 0));

-- name: merkle_tree_size
-- Leaves are stored in position order, 0..size-1: one backward probe of the primary key
-- (written as order by / limit: max() without statistics was planned as a scan).
select coalesce((select idx + 1 from chain_nodes
                 where cooperative_id = %(cooperative_id)s and level = 0
                 order by idx desc limit 1), 0) as size;

-- name: merkle_nodes
-- The nodes at the given addresses (levels[i], idxs[i]), each found through the primary key.
select level, idx, hash
from chain_nodes
where cooperative_id = %(cooperative_id)s
  and (level, idx) in (select * from unnest(%(levels)s::smallint[], %(idxs)s::bigint[]));

-- name: merkle_insert_nodes
insert into chain_nodes (cooperative_id, level, idx, hash)
select %(cooperative_id)s, n.level, n.idx, n.hash
from unnest(%(levels)s::smallint[], %(idxs)s::bigint[], %(hashes)s::bytea[]) as n (level, idx, hash);

-- name: merkle_insert_new_nodes
insert into chain_nodes (cooperative_id, level, idx, hash)
select %(cooperative_id)s, n.level, n.idx, n.hash
from unnest(%(levels)s::smallint[], %(idxs)s::bigint[], %(hashes)s::bytea[]) as n (level, idx, hash)
on conflict do nothing;

-- name: merkle_chain_hashes
-- A batch of the chain's event hashes from a position on, through (cooperative_id, position).
select position, hash
from trace_events
where cooperative_id = %(cooperative_id)s and position >= %(position)s
order by position
limit %(limit)s;
