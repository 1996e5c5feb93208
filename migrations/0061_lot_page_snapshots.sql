-- The public lot page rendered from what was written (issue 18).
--
-- lot_page_snapshots: what a lot's page shows (the signed statement as served, the trees,
-- plots and farms beside it), built by the writer in the transaction that moves the lot's
-- history (trace/statements.py refresh -> trace/page_snapshots.py) and deleted when the
-- registry rows it shows change (trace/registry_versions.py); a page miss reads it by
-- primary key. `version` changes with every rebuild and with every new verification
-- result, and is what the page cache revalidates against.
create sequence lot_page_snapshot_versions;

create table lot_page_snapshots (
    lot_id         uuid primary key references lots(id) on delete cascade,
    cooperative_id uuid not null references cooperatives(id),
    version        bigint not null default nextval('lot_page_snapshot_versions'),
    statement_id   bigint,               -- lot_statements.id it was built from
    plot_ids       uuid[] not null,      -- the plots it shows: a registry change finds it
    data           jsonb not null,
    verification   jsonb,                -- the latest verification summary; null: not yet
    -- the organisation's signature over lot, data and verification (page_snapshots.seal):
    -- a row edited behind the application's back is not shown, but built again
    seal           jsonb not null,
    built_at       timestamptz not null default now(),
    verified_at    timestamptz
);
create index lot_page_snapshots_coop_idx on lot_page_snapshots (cooperative_id);
create index lot_page_snapshots_plots_idx on lot_page_snapshots using gin (plot_ids);
