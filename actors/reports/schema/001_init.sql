-- Error reports QA files on drafts (SPEC "Error report", seed section 4.1), and the saga that turns
-- each committed report into an indexed pattern, a pattern-learning notice and a scheduled
-- verification. The free-text notes are stored only as Fernet tokens, so they are encrypted at
-- rest and other tools can read them with the key.

CREATE TABLE reports.error_reports (
  id                             bigserial PRIMARY KEY,
  speaker_id                     text NOT NULL CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  client_id                      text NOT NULL CHECK (octet_length(client_id) BETWEEN 1 AND 128),
  job_id                         text NOT NULL CHECK (octet_length(job_id) BETWEEN 1 AND 128),
  original_text                  text NOT NULL CHECK (original_text <> ''),
  corrected_text                 text NOT NULL CHECK (corrected_text <> ''),
  context_text                   text NOT NULL DEFAULT '',
  error_categories               text[] NOT NULL CHECK (cardinality(error_categories) >= 1),
  bucket_type                    text NOT NULL
                                 CHECK (bucket_type IN ('no_touch', 'low_touch', 'medium_touch',
                                                        'high_touch')),
  audio_quality                  text NOT NULL
                                 CHECK (audio_quality IN ('excellent', 'good', 'fair', 'poor')),
  speaker_clarity                text NOT NULL
                                 CHECK (speaker_clarity IN ('clear', 'moderate', 'unclear')),
  background_noise               text NOT NULL
                                 CHECK (background_noise IN ('none', 'low', 'moderate', 'high')),
  number_of_speakers             integer NOT NULL CHECK (number_of_speakers BETWEEN 1 AND 20),
  overlapping_speech             boolean NOT NULL,
  requires_specialized_knowledge boolean NOT NULL,
  additional_notes_token         text,  -- Fernet token, never plaintext; NULL = no note
  context_notes_token            text,  -- Fernet token, never plaintext; NULL = no note
  status                         text NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'rectified', 'not_rectified')),
  weight                         double precision NOT NULL DEFAULT 0.5
                                 CHECK (weight BETWEEN 0 AND 1),
  filed_by                       text NOT NULL DEFAULT '',
  created_at                     timestamptz NOT NULL DEFAULT now(),
  updated_at                     timestamptz NOT NULL DEFAULT now()
);

-- The list pages newest first by id (keyset); each filter leads into it.
CREATE INDEX error_reports_by_speaker ON reports.error_reports (speaker_id, id);
CREATE INDEX error_reports_by_status ON reports.error_reports (status, id);
CREATE INDEX error_reports_by_created ON reports.error_reports (created_at, id);
CREATE INDEX error_reports_by_category ON reports.error_reports USING gin (error_categories);

-- The durable outbox of the saga: one row per report, written in the same transaction as the
-- report. `step` is the next step to run; a step is acknowledged by moving `step` on, conditional
-- on the revision it ran for, so a status change that rewinds the saga is never lost to a stale
-- acknowledgement. `next_attempt_at` is both the backoff after a failure and a claim: a node
-- running the saga keeps it in the future, so another node takes over only once it lapses.
CREATE TABLE reports.report_saga (
  report_id       bigint PRIMARY KEY REFERENCES reports.error_reports (id) ON DELETE CASCADE,
  step            text NOT NULL DEFAULT 'index'
                  CHECK (step IN ('index', 'notify', 'schedule', 'done')),
  revision        bigint NOT NULL DEFAULT 0,
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error      text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz
);

CREATE INDEX report_saga_due ON reports.report_saga (next_attempt_at) WHERE step <> 'done';

-- What happened to each report after it was stored, for people (GET shows it) and for tests.
CREATE TABLE reports.saga_log (
  id         bigserial PRIMARY KEY,
  report_id  bigint NOT NULL REFERENCES reports.error_reports (id) ON DELETE CASCADE,
  step       text NOT NULL,
  note       text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX saga_log_by_report ON reports.saga_log (report_id, id);
