-- EUDR evidence of no deforestation, per plot (trace/eudr_evidence.py): risk screening
-- results imported from a file (Whisp, Global Forest Watch...) or entered by hand. Each
-- import or entry is a signed chain event of the cooperative ("eudr_screening") recording
-- every row's facts; event_seq names it, so that verification names a row edited with psql
-- (eudr_evidence.verify_screenings). Rows are evidence: never updated by the application,
-- a newer screening is a new row (the newest by analysis date, then recording, counts).
create table plot_screenings (
    id               uuid primary key default gen_random_uuid(),
    cooperative_id   uuid not null references cooperatives (id) on delete cascade,
    plot_id          uuid not null references plots (id) on delete cascade,
    risk             text not null check (risk in ('low', 'standard', 'high')),
    source_category  text check (char_length(source_category) between 1 and 80),
    source           text not null check (char_length(source) between 1 and 120),
    analysis_id      text check (char_length(analysis_id) between 1 and 200),
    analysis_date    date not null,
    note             text check (char_length(note) <= 2000),
    mitigation_note  text check (char_length(mitigation_note) <= 2000),
    -- land-use evidence for trees planted after 31 December 2020 (e.g. the plot was
    -- already farmland): clears the "planted after the cut-off" blocker
    land_use_note    text check (char_length(land_use_note) <= 2000),
    recorded_by      text not null check (char_length(recorded_by) between 1 and 200),
    recorded_at      timestamptz not null default now(),
    event_seq        bigint
);
-- readiness: a plot's screenings, newest first
create index plot_screenings_plot_idx on plot_screenings (plot_id, analysis_date desc, recorded_at desc);
create index plot_screenings_coop_idx on plot_screenings (cooperative_id);
