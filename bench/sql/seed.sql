-- The raw ceilings of `coffeetrace bench seed` (bench/seed.py): scratch tables that the
-- very bytes the bulk seeding wrote into `trees` are COPYed into, one statement each.

-- name: bench_seed_create_copy_bare
-- Raw ceiling 1: the trees table's columns and defaults only, without keys, foreign
-- keys, checks or indexes.
create table bench_seed_copy_bare (like trees including defaults)

-- name: bench_seed_create_copy_shaped
-- Raw ceiling 2: a scratch copy of trees with its columns, defaults, checks, keys and
-- indexes, and the same two foreign keys: what one COPY of the rows into a table of
-- that shape costs.
create table bench_seed_copy_shaped (like trees including all);
alter table bench_seed_copy_shaped
    add foreign key (cooperative_id) references cooperatives (id),
    add foreign key (plot_id) references plots (id)

-- name: bench_seed_copy_bare
copy bench_seed_copy_bare (id, public_id, tag_code, cooperative_id, plot_id, lon, lat,
                           species, cultivar, planted_on, status, event_seq) from stdin

-- name: bench_seed_copy_shaped
copy bench_seed_copy_shaped (id, public_id, tag_code, cooperative_id, plot_id, lon, lat,
                             species, cultivar, planted_on, status, event_seq) from stdin

-- name: bench_seed_count_trees
select count(*) as n from trees

-- name: bench_seed_drop_copy_scratch
drop table if exists bench_seed_copy_bare, bench_seed_copy_shaped
