-- name: unsigned_events
select * from trace_events
where cooperative_id = %(cooperative_id)s and signature is null order by seq;

-- name: sign_event
update trace_events set signature = %(signature)s where seq = %(seq)s and signature is null;

-- name: lots_without_statement
select l.id from lots l
where l.cooperative_id = %(cooperative_id)s
  and not exists (select 1 from lot_statements s where s.lot_id = l.id)
order by l.created_at, l.id;
