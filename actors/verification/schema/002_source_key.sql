-- Verifications asked for by other families (a filed error report) rather than caused by a bucket
-- change: they carry a unique source_key instead of an event id, with the same once-only rule.

ALTER TABLE verification.schedule ALTER COLUMN source_event_id DROP NOT NULL;
ALTER TABLE verification.schedule
  ADD COLUMN source_key text UNIQUE CHECK (octet_length(source_key) BETWEEN 1 AND 200);
ALTER TABLE verification.schedule
  ADD CONSTRAINT schedule_has_a_source CHECK (source_event_id IS NOT NULL OR source_key IS NOT NULL);
