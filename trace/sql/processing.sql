-- name: lock_input_lots
-- Row locks in id order: concurrent steps on the same lots queue instead of deadlocking.
-- ready_at: when the lot came to be (its step, else its latest harvest, else its receipt as
-- an external lot, else its recording);
-- a step on it cannot have happened before.
select id, code, cooperative_id, kind, quantity_kg, remaining_kg, harvest_from, harvest_to,
       cherry_equiv_kg,
       coalesce((select t.occurred_at from transformations t where t.id = lots.produced_by),
                (select max(h.harvest_time) from lot_harvests h where h.lot_id = lots.id),
                -- an external lot (migration 0059): when it was received
                (select e.received_at from external_lots e where e.lot_id = lots.id),
                created_at) as ready_at
from lots where id = any(%(ids)s::uuid[]) and cooperative_id = %(cooperative_id)s
order by id for update;

-- name: consume_lot
update lots set remaining_kg = remaining_kg - %(kg)s
where id = %(id)s and remaining_kg >= %(kg)s;

-- name: insert_transformation
insert into transformations (cooperative_id, step, occurred_at, place, place_i18n,
                             measurements, evidence, input_kg, output_kg)
values (%(cooperative_id)s, %(step)s, %(occurred_at)s, %(place)s, %(place_i18n)s,
        %(measurements)s, %(evidence)s, %(input_kg)s, %(output_kg)s)
returning *;

-- name: insert_inputs
insert into transformation_inputs (transformation_id, lot_id, kg)
select %(transformation_id)s, x.lot_id, x.kg
from unnest(%(lot_ids)s::uuid[], %(kgs)s::numeric[]) as x(lot_id, kg);

-- name: insert_outputs
insert into transformation_outputs (transformation_id, lot_id, kg)
select %(transformation_id)s, x.lot_id, x.kg
from unnest(%(lot_ids)s::uuid[], %(kgs)s::numeric[]) as x(lot_id, kg);

-- name: set_transformation_event
update transformations set event_seq = %(seq)s where id = %(id)s;

-- name: get_transformation
select t.*,
       (select coalesce(json_agg(json_build_object('lot_id', i.lot_id, 'kg', i.kg)
                                 order by i.lot_id), '[]')
        from transformation_inputs i where i.transformation_id = t.id) as inputs,
       (select coalesce(json_agg(json_build_object('lot_id', o.lot_id, 'kg', o.kg)
                                 order by o.lot_id), '[]')
        from transformation_outputs o where o.transformation_id = t.id) as outputs
from transformations t where t.id = %(id)s;
