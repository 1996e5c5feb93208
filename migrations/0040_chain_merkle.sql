-- A transparency-log Merkle tree (RFC 9162 section 2.1) over each cooperative's chain of
-- trace events, so that a cooperative can publish one root for its whole chain and prove,
-- in O(log n) hashes, that an event is in it (inclusion) and that a later root extends an
-- earlier one (consistency: no event was removed or rewritten in between).
--
-- trace_events.position: the event's 0-based place in its cooperative's chain, the index
-- of its leaf. Existing events are numbered in seq order, as the chain links them.
--
-- chain_nodes: the tree's complete aligned subtrees, stored once complete and never
-- changed. (level, idx) is the subtree over leaves [idx * 2^level, (idx + 1) * 2^level);
-- level 0 holds the leaf hashes, SHA-256(0x00 || the 32 bytes of the event's hash), and a
-- node above it SHA-256(0x01 || left || right). Any root or proof is assembled from at
-- most about 2 log2(n) of them (coffeetrace.trace.merkle). Level-0 nodes are stored in
-- position order, so the tree's size is max(idx) + 1 at level 0.
--
-- No nodes are built here (hashing the tree is no job for plain SQL): a chain's nodes are
-- built from its events the first time a leaf is appended to it
-- (coffeetrace.trace.merkle_store.catch_up).

alter table trace_events add column position bigint;

update trace_events e
set position = numbered.position
from (
    select seq, row_number() over (partition by cooperative_id order by seq) - 1 as position
    from trace_events
) numbered
where e.seq = numbered.seq;

alter table trace_events alter column position set not null;
create unique index trace_events_coop_position_idx on trace_events (cooperative_id, position);

create table chain_nodes (
    cooperative_id  uuid not null references cooperatives (id),
    level           smallint not null,
    idx             bigint not null,
    hash            bytea not null check (length(hash) = 32),
    primary key (cooperative_id, level, idx)
);
