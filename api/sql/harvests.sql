-- The harvest list of the cooperative API (GET /v1/harvests), from which a clerk picks
-- the harvest_ids of a cherry lot (POST /v1/lots).
--
-- What is left of a harvest is the rule of trace/sql/lots.sql (harvests_by_ids): its
-- cherry_kg less the kilograms lot_harvests already took from it; a cherry lot takes all
-- of what is left, or a stated part. tests/api/test_harvests_list.py checks that this
-- list and the domain (lots.harvest_remaining) agree.
--
-- Newest first, with keyset pagination on (time, id): `after_time`/`after_id` are the last
-- row of the previous page. The bare `time <= after_time` lets the index on
-- (cooperative_id, time) (or (plot_id, time), (tree_id, time), (farm_id, time)) start at
-- the page instead of reading every later row again. Newest first also makes
-- `unassigned` cheap where it matters: late in a season most harvests are in lots and
-- the ones left are the recent ones, found at the start of the walk (oldest first, the
-- first page read every assigned harvest before them). The period is [since, until).

-- name: list_harvests
select h.id, h.time, h.tree_id, t.tag_code as tree_tag, h.plot_id, p.code as plot_code,
       h.farm_id, f.code as farm_code, h.device_id, h.cherry_kg::float8 as cherry_kg,
       h.ripeness_pct::float8 as ripeness_pct, taken.kg::float8 as assigned_kg,
       (h.cherry_kg - taken.kg)::float8 as remaining_kg, taken.lots
from harvest_events h
join trees t on t.id = h.tree_id
join plots p on p.id = h.plot_id
join farms f on f.id = h.farm_id
cross join lateral (
    select coalesce(sum(lh.kg), 0) as kg,
           coalesce(json_agg(json_build_object('lot_id', l.id, 'code', l.code,
                                               'kg', lh.kg::float8) order by l.code), '[]')
               as lots
    from lot_harvests lh join lots l on l.id = lh.lot_id
    where lh.harvest_id = h.id
) taken
where h.cooperative_id = %(cooperative_id)s
  and (%(after_time)s::timestamptz is null
       or (h.time <= %(after_time)s::timestamptz
           and (h.time < %(after_time)s::timestamptz or h.id < %(after_id)s::uuid)))
  and (%(plot_id)s::uuid is null or h.plot_id = %(plot_id)s::uuid)
  and (%(tree_id)s::uuid is null or h.tree_id = %(tree_id)s::uuid)
  and (%(farm_id)s::uuid is null or h.farm_id = %(farm_id)s::uuid)
  and (%(device_id)s::text is null or h.device_id = %(device_id)s::text)
  and (%(since)s::timestamptz is null or h.time >= %(since)s::timestamptz)
  and (%(until)s::timestamptz is null or h.time < %(until)s::timestamptz)
  and (%(unassigned)s::boolean is null
       or (h.cherry_kg - taken.kg > 0) = %(unassigned)s::boolean)
order by h.time desc, h.id desc
limit %(limit)s;
