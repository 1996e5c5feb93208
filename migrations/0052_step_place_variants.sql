-- A processing step's place in the page's language: `place` stays the text every export
-- states; `place_i18n` may give it per language, {"vi": ..., "en": ...} (either or both,
-- POST /v1/transformations), and the public page picks the reader's, marking a fallback
-- to the other. Part of the step's transformation event (and of the lot's signed
-- provenance document) when given, so an edit with psql is named by verification.
alter table transformations add column place_i18n jsonb
    check (place_i18n is null or jsonb_typeof(place_i18n) = 'object');
