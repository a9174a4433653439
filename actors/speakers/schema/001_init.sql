-- Speakers, their verified-job quality, every bucket change, and the outbox that turns committed
-- changes into events. The migration runner creates the schema; names are fully qualified.

CREATE TABLE speakers.speakers (
  speaker_id     text PRIMARY KEY CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  client_id      text NOT NULL CHECK (octet_length(client_id) BETWEEN 1 AND 128),
  display_name   text NOT NULL DEFAULT '',
  bucket         text NOT NULL
                 CHECK (bucket IN ('no_touch', 'low_touch', 'medium_touch', 'high_touch')),
  pinned         boolean NOT NULL DEFAULT false,
  pin_reason     text NOT NULL DEFAULT '',
  pinned_by      text NOT NULL DEFAULT '',
  pinned_at      timestamptz,
  -- Summary of the rolling window, kept beside the samples so a list page needs no aggregation.
  window_size    integer NOT NULL DEFAULT 0 CHECK (window_size >= 0),
  window_mean    double precision NOT NULL DEFAULT 0,
  samples_total  bigint NOT NULL DEFAULT 0 CHECK (samples_total >= 0),
  bucket_changes bigint NOT NULL DEFAULT 0 CHECK (bucket_changes >= 0),
  -- Bumped by every write; a write names the version it read, so a stale writer changes nothing.
  version        bigint NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- List filters page by speaker_id (keyset), so each filter leads into it.
CREATE INDEX speakers_bucket_keyset ON speakers.speakers (bucket, speaker_id);
CREATE INDEX speakers_client_keyset ON speakers.speakers (client_id, speaker_id);
CREATE INDEX speakers_client_bucket_keyset ON speakers.speakers (client_id, bucket, speaker_id);

CREATE TABLE speakers.quality_samples (
  id                   bigserial PRIMARY KEY,
  speaker_id           text NOT NULL REFERENCES speakers.speakers (speaker_id),
  job_id               text NOT NULL CHECK (octet_length(job_id) BETWEEN 1 AND 128),
  -- NaN sorts above every number in PostgreSQL, so the upper bound also keeps NaN and infinity out.
  errors_per_100_words double precision NOT NULL
                       CHECK (errors_per_100_words BETWEEN 0 AND 1000000),
  actor                text NOT NULL DEFAULT '',
  created_at           timestamptz NOT NULL DEFAULT now(),
  UNIQUE (speaker_id, job_id)  -- a job counts once per speaker
);

-- The window is the newest samples of one speaker.
CREATE INDEX quality_samples_recent ON speakers.quality_samples (speaker_id, id DESC);

CREATE TABLE speakers.bucket_history (
  id              bigserial PRIMARY KEY,
  speaker_id      text NOT NULL REFERENCES speakers.speakers (speaker_id),
  kind            text NOT NULL CHECK (kind IN ('register', 'policy', 'pin', 'unpin')),
  previous_bucket text,  -- NULL for the registration row
  new_bucket      text NOT NULL,
  reason          text NOT NULL DEFAULT '',
  actor           text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bucket_history_by_speaker ON speakers.bucket_history (speaker_id, id);

-- Written in the same transaction as the change it announces; the relay delivers each row to the
-- event bus and to the Redis stream separately and stamps each target when it has it.
CREATE TABLE speakers.outbox (
  id                  bigserial PRIMARY KEY,
  topic               text NOT NULL,
  payload             jsonb NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  stream_published_at timestamptz,
  delivered_at        timestamptz
);

CREATE INDEX outbox_undelivered ON speakers.outbox (id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_unpublished ON speakers.outbox (id) WHERE stream_published_at IS NULL;
