-- name: get_lot
select l.id, l.public_id, l.cooperative_id, c.code as cooperative_code, l.code, l.product_id,
       p.gtin, p.name as product_name, l.kind, l.quantity_kg, l.remaining_kg, l.harvest_from,
       l.harvest_to, l.created_at, l.produced_by, l.cherry_equiv_kg
from lots l
join cooperatives c on c.id = l.cooperative_id
left join products p on p.id = l.product_id
where l.id = %(id)s;

-- name: lot_by_public_id
select l.id from lots l where l.public_id = %(public_id)s;

-- name: lot_by_gtin_and_code
select l.id from lots l join products p on p.id = l.product_id
where p.gtin = %(gtin)s and l.code = %(code)s;

-- name: lots_by_code
select l.id, c.code as cooperative_code from lots l join cooperatives c on c.id = l.cooperative_id
where l.code = %(code)s and (%(cooperative_code)s::text is null or c.code = %(cooperative_code)s);
