-- Keyset pages of the cooperative API (`where cooperative_id = $1 and id > $cursor
-- order by id`) read one index range per page instead of filtering the whole table.
create index if not exists farms_coop_id_idx on farms (cooperative_id, id);
create index if not exists plots_coop_id_idx on plots (cooperative_id, id);
create index if not exists trees_coop_id_idx on trees (cooperative_id, id);
create index if not exists lots_coop_id_idx on lots (cooperative_id, id);
create index if not exists transformations_coop_id_idx on transformations (cooperative_id, id);
