-- name: insert_statement
insert into lot_statements (lot_id, cooperative_id, chain_seq, document, signature, checkpoint_id)
values (%(lot_id)s, %(cooperative_id)s, %(chain_seq)s, %(document)s, %(signature)s,
        %(checkpoint_id)s)
returning id;

-- name: newest_statement
select s.id, s.lot_id, s.cooperative_id, s.chain_seq, s.document, s.signature, s.made_at,
       s.checkpoint_id
from lot_statements s where s.lot_id = %(lot_id)s order by s.id desc limit 1;

-- name: positions_of_events
select seq, position, hash from trace_events
where cooperative_id = %(cooperative_id)s and seq = any(%(seqs)s::bigint[]) order by seq;
