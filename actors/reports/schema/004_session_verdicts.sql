-- The verification sessions whose verdicts moved weights and statuses: a session's verdicts are
-- applied once, so a submit retried after a crash moves nothing twice.
CREATE TABLE reports.session_verdicts (
  session_id  bigint PRIMARY KEY,
  speaker_id  text NOT NULL,
  verdicts    integer NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);
