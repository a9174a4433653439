-- Verification sessions (one session actor each, re-activated from these rows on demand): the
-- jobs as pulled and corrected when the session started (content, immutable), QA's marks and
-- residual error counts (as often as QA saves them), and what the submit did.

CREATE TABLE verification.sessions (
  id              bigserial PRIMARY KEY,
  speaker_id      text NOT NULL CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  client_id       text NOT NULL,
  owner           text NOT NULL,
  status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'submitted', 'expired')),
  from_at         timestamptz NOT NULL,
  to_at           timestamptz NOT NULL,
  error_types     text[] NOT NULL DEFAULT '{}',
  max_jobs        integer NOT NULL,
  source          text NOT NULL,
  stale           boolean NOT NULL DEFAULT false,
  stale_since     timestamptz,
  stale_reason    text NOT NULL DEFAULT '',
  -- Draft text is clinical; it is kept here as InstaNote and the reports keep it (not encrypted),
  -- for as long as the session is kept.
  content         jsonb NOT NULL,
  idle_timeout_ms bigint NOT NULL CHECK (idle_timeout_ms > 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  submitted_at    timestamptz,
  submitted_by    text,
  effects_done    boolean NOT NULL DEFAULT false,
  outcome         jsonb
);

CREATE INDEX sessions_open_by_expiry ON verification.sessions (expires_at) WHERE status = 'open';
CREATE INDEX sessions_effects_pending ON verification.sessions (submitted_at)
  WHERE status = 'submitted' AND NOT effects_done;

-- seq is taken again at every save of a mark, so ORDER BY seq is the order marks were committed.
CREATE SEQUENCE verification.session_mark_seq;
CREATE TABLE verification.session_marks (
  session_id    bigint NOT NULL REFERENCES verification.sessions (id) ON DELETE CASCADE,
  correction_id bigint NOT NULL,
  verdict       text NOT NULL CHECK (verdict IN ('rectified', 'not_rectified')),
  seq           bigint NOT NULL DEFAULT nextval('verification.session_mark_seq'),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, correction_id)
);

CREATE TABLE verification.session_residuals (
  session_id      bigint NOT NULL REFERENCES verification.sessions (id) ON DELETE CASCADE,
  job_id          text NOT NULL,
  residual_errors integer NOT NULL CHECK (residual_errors >= 0),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, job_id)
);

-- The queue: a session started for a scheduled speaker takes its entries; they are done when it
-- is submitted and scheduled again when it expires unsubmitted.
ALTER TABLE verification.schedule DROP CONSTRAINT schedule_status_check;
ALTER TABLE verification.schedule ADD CONSTRAINT schedule_status_check
  CHECK (status IN ('scheduled', 'taken', 'in_progress', 'done', 'cancelled'));
ALTER TABLE verification.schedule ADD COLUMN session_id bigint;
CREATE INDEX schedule_by_session ON verification.schedule (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE verification.idempotency_keys (
  principal      text NOT NULL,
  idem_key       text NOT NULL CHECK (octet_length(idem_key) BETWEEN 1 AND 255),
  request_digest text NOT NULL,
  outcome        smallint NOT NULL,
  answer         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON verification.idempotency_keys (created_at);
