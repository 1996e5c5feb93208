-- name: lot_for_label
select l.id, l.public_id, l.code, l.kind, l.harvest_from, l.harvest_to, p.gtin,
       p.name as product_name
from lots l left join products p on p.id = l.product_id
where l.id = %(id)s;
