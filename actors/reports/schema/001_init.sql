-- Error reports QA files on drafts (SPEC "Error report", seed section 4.1). The free-text notes are
-- stored only as Fernet tokens, so they are encrypted at rest and other tools can read them with
-- the key.

CREATE TABLE reports.error_reports (
  id                             bigserial PRIMARY KEY,
  speaker_id                     text NOT NULL CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  client_id                      text NOT NULL CHECK (octet_length(client_id) BETWEEN 1 AND 128),
  job_id                         text NOT NULL CHECK (octet_length(job_id) BETWEEN 1 AND 128),
  original_text                  text NOT NULL,
  corrected_text                 text NOT NULL,
  error_categories               text[] NOT NULL DEFAULT '{}',
  bucket_type                    text NOT NULL
                                 CHECK (bucket_type IN ('no_touch', 'low_touch', 'medium_touch',
                                                        'high_touch')),
  audio_quality                  text,
  speaker_clarity                text,
  background_noise               text,
  number_of_speakers             integer CHECK (number_of_speakers >= 1),
  overlapping_speech             boolean,
  requires_specialized_knowledge boolean,
  additional_notes_token         text,  -- Fernet token, never plaintext
  context_notes_token            text,  -- Fernet token, never plaintext
  status                         text NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'rectified', 'not_rectified')),
  created_at                     timestamptz NOT NULL DEFAULT now(),
  updated_at                     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX error_reports_by_speaker ON reports.error_reports (speaker_id, created_at);
CREATE INDEX error_reports_by_status ON reports.error_reports (status, created_at);
