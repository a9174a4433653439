-- Which speakers QA should verify next. One row per bucket-change event at most: the event id is
-- unique, so a redelivered event schedules nothing twice.

CREATE TABLE verification.schedule (
  id              bigserial PRIMARY KEY,
  speaker_id      text NOT NULL CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  priority        text NOT NULL CHECK (priority IN ('high', 'normal')),
  reason          text NOT NULL DEFAULT '',
  status          text NOT NULL DEFAULT 'scheduled'
                  CHECK (status IN ('scheduled', 'in_progress', 'done', 'cancelled')),
  source_event_id bigint NOT NULL UNIQUE,
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedule_by_priority ON verification.schedule (priority, id);
CREATE INDEX schedule_by_speaker ON verification.schedule (speaker_id, id);
