-- A product's name in the page's language: `name` stays the product's name (its key within
-- the cooperative, what labels and exports print); `name_i18n` may give it per language,
-- {"vi": ..., "en": ...} (either or both, set by POST /v1/products), and the public page
-- picks the reader's, marking a fallback to the other. Recorded in the product's registry
-- version when given (trace/registry_versions.py), so an edit with psql is named.
alter table products add column name_i18n jsonb
    check (name_i18n is null or jsonb_typeof(name_i18n) = 'object');
