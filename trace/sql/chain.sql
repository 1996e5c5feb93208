-- name: lock_chain
-- One appender per cooperative chain at a time; released at commit.
select pg_advisory_xact_lock(hashtextextended('coffeetrace.trace_chain:' || %(cooperative_id)s::text, 0));

-- name: chain_head
select seq, hash, position from trace_events
where cooperative_id = %(cooperative_id)s
order by seq desc limit 1;

-- name: next_seq
select nextval(pg_get_serial_sequence('trace_events', 'seq')) as seq;

-- name: insert_event
insert into trace_events (seq, cooperative_id, kind, lot_ids, occurred_at, payload, prev_hash,
                          hash, position, signature)
overriding system value
values (%(seq)s, %(cooperative_id)s, %(kind)s, %(lot_ids)s, %(occurred_at)s, %(payload)s,
        %(prev_hash)s, %(hash)s, %(position)s, %(signature)s)
returning seq, cooperative_id, kind, lot_ids, occurred_at, recorded_at, prev_hash, hash,
          position, signature;

-- name: events_for_lots
-- Each event with its neighbours in the cooperative's chain, found through the
-- (cooperative_id, seq) index rather than by walking the whole chain.
select e.*, p.seq as pred_seq, p.hash as pred_hash, n.seq as succ_seq,
       n.prev_hash as succ_prev_hash
from trace_events e
left join lateral (
    select x.seq, x.hash from trace_events x
    where x.cooperative_id = e.cooperative_id and x.seq < e.seq
    order by x.seq desc limit 1) p on true
left join lateral (
    select x.seq, x.prev_hash from trace_events x
    where x.cooperative_id = e.cooperative_id and x.seq > e.seq
    order by x.seq limit 1) n on true
where e.lot_ids && %(lot_ids)s::uuid[] or e.seq = any(%(seqs)s::bigint[])
order by e.seq;

-- name: chain_events
select * from trace_events where cooperative_id = %(cooperative_id)s and seq > %(after)s
order by seq limit %(limit)s;

-- name: lots_for_verify
select l.id, l.code, l.public_id, l.kind, l.quantity_kg, l.remaining_kg, l.product_id,
       l.produced_by, l.cooperative_id, l.event_seq, l.cherry_equiv_kg,
       (select t.event_seq from transformations t where t.id = l.produced_by) as step_event_seq,
       coalesce((select sum(ti.kg) from transformation_inputs ti where ti.lot_id = l.id), 0)
       -- kg of the lot on its way to a partner (migration 0053): taken from it, not yet
       -- by a step of the receiver (accepted) nor given back (rejected)
       + coalesce((select sum(sl.kg) from shipment_lines sl
                   join shipments s on s.id = sl.shipment_id and s.status = 'in_transit'
                   where sl.lot_id = l.id), 0)
           as consumed_kg
from lots l where l.id = any(%(lot_ids)s::uuid[]);

-- name: lot_harvests_for_lots
-- The lots' inputs; verification reads the harvest rows themselves once, for their
-- batches and for these.
select lot_id, harvest_id, kg, tree_id from lot_harvests
where lot_id = any(%(lot_ids)s::uuid[]);

-- name: transformations_with_edges_by_ids
select t.*,
       (select coalesce(json_agg(json_build_object('lot_id', i.lot_id, 'kg', i.kg::text)
                                 order by i.lot_id), '[]')
        from transformation_inputs i where i.transformation_id = t.id) as inputs,
       (select coalesce(json_agg(json_build_object('lot_id', o.lot_id, 'kg', o.kg::text)
                                 order by o.lot_id), '[]')
        from transformation_outputs o where o.transformation_id = t.id) as outputs
from transformations t where t.id = any(%(ids)s::uuid[]);

-- name: events_of_kind
-- The events of one kind in an organisation's chain, oldest first (what a record table is
-- compared with: screenings, DDS references...).
select seq, cooperative_id, kind, payload from trace_events
where cooperative_id = %(cooperative_id)s and kind = %(kind)s
order by seq;
