-- Idempotency keys of this family's writes (runtime/db/idempotency.hpp): the key, the digest of
-- the request it was first used for, and the answer, written in the write's own transaction.
-- Kept for idempotency.retention, then purged.
CREATE TABLE speakers.idempotency_keys (
  principal      text NOT NULL,
  idem_key       text NOT NULL CHECK (octet_length(idem_key) BETWEEN 1 AND 255),
  request_digest text NOT NULL,
  outcome        smallint NOT NULL,  -- 0: answered; otherwise the errc of a stored refusal
  answer         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, idem_key)
);

CREATE INDEX idempotency_keys_by_age ON speakers.idempotency_keys (created_at);

-- Audit entries of pins and unpins travel through the outbox too (topic audit.record), committed
-- with the change; this stamp says the audit log has them.
ALTER TABLE speakers.outbox ADD COLUMN audited_at timestamptz;
CREATE INDEX outbox_unaudited ON speakers.outbox (id) WHERE audited_at IS NULL AND topic = 'audit.record';
