-- EUDR due diligence statements: a producer's legal name goes to the EU's authorities only
-- with the farm's consent to exactly that (trace/dds.py). A consent of its own, apart from
-- data_consent (sharing data in general): a farmer may agree to one and not the other.
-- Set with PUT /v1/farms/{id}/private like the rest of farm_private; a change records a
-- new registry version of the farm (its facts carry `authority_consent` when it is given,
-- trace/registry_versions.py), so an edit with psql is named by verification. Without
-- it the statement names the farm's cooperative as the producer group. A withdrawal of
-- consent (consent_withdrawn_at) withdraws this one too.
alter table farm_private add column authority_consent boolean not null default false;

comment on column farm_private.authority_consent is
    'The farm agreed that its owner''s name be given to the EU authorities as the producer'
    ' in EUDR due diligence statements (migration 0046); otherwise the cooperative is named'
    ' as the producer group.';
