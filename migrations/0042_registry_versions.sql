-- Registry versions: the registry facts that pages and exports state are chain events.
--
-- plots, trees, farms, products .event_seq: the trace_events row (kind "registry") that
-- holds the version in force of the row's facts (coffeetrace.trace.registry_versions):
-- plots {code, farm_id, geometry, area_ha, altitude_m, growing_area_code, district,
-- centroid}, trees {public_id, tag_code, plot_id, lon, lat, species, cultivar,
-- planted_on, status}, farms {code, display_name, display_name_consent, district,
-- commune, data_consent, owner_name_sha256} (consent and the owner's name come from
-- farm_private, but a farm_private change records a new version of the farm, so the
-- farm's event_seq covers them; farm_private needs no column), products {name, kind,
-- gtin}. Every registry write appends the event and sets the column in the same
-- transaction; one event may hold many rows' versions (bulk seeding). Verification
-- compares each row with the facts its event recorded: a row edited with psql (no
-- signing key, so no new signed event) no longer matches, and a row whose event_seq is
-- empty or names another event is reported too.
--
-- No foreign key to trace_events: a pointer at a missing event is itself a finding of
-- verification, not an error of the write that would hide it. Rows registered before
-- this migration have no version (null) until `registry_versions.record_versions` is
-- run for them.
alter table plots add column event_seq bigint;
alter table trees add column event_seq bigint;
alter table farms add column event_seq bigint;
alter table products add column event_seq bigint;
