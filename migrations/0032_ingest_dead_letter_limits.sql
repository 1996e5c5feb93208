-- Dead letters that a hostile or broken device cannot use to flood the store.
--
-- payload_encoding: 'text' (the payload as it came, or a JSON rendering of one rejected
-- item, with NUL and lone surrogates escaped as \u0000 / \ud800) or 'hex' (bytes that were
-- not clean UTF-8, stored as hexadecimal).
alter table dead_letters
    add column payload_encoding text not null default 'text'
        check (payload_encoding in ('text', 'hex'));

-- Retention (COFFEETRACE_INGEST_DEAD_LETTER_RETENTION_DAYS) prunes oldest first.
create index dead_letters_received_idx on dead_letters (received_at);

-- Dead letters per device and hour: every one is counted here, but only the first
-- COFFEETRACE_INGEST_DEAD_LETTERS_PER_DEVICE_HOUR get a row in dead_letters; the rest are
-- dropped = received - kept. device_id '' stands for messages on no device's topic.
create table dead_letter_hours (
    device_id   text not null,
    hour        timestamptz not null,
    received    integer not null,
    kept        integer not null,
    -- rows the last batch was allowed to keep (how ingest learns its share, under the
    -- row's lock, when several consumers write the same device and hour)
    kept_last   integer not null,
    last_reason text not null,
    primary key (device_id, hour)
);
create index dead_letter_hours_hour_idx on dead_letter_hours (hour);
