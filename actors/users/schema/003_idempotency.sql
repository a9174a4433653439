-- Idempotency keys of this family's writes (runtime/db/idempotency.hpp): the key, the digest of
-- the request it was first used for, and the answer, written in the write's own transaction.
-- Kept for idempotency.retention, then purged.
CREATE TABLE users.idempotency_keys (
  principal      text NOT NULL,
  idem_key       text NOT NULL CHECK (octet_length(idem_key) BETWEEN 1 AND 255),
  request_digest text NOT NULL,
  outcome        smallint NOT NULL,  -- 0: answered; otherwise the errc of a stored refusal
  answer         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, idem_key)
);

CREATE INDEX idempotency_keys_by_age ON users.idempotency_keys (created_at);

-- Audit rows delivered from another family's outbox (a bucket pin is committed with its audit
-- entry in the speakers' outbox) carry that outbox row's key, so a redelivery adds nothing.
ALTER TABLE users.audit_log ADD COLUMN source_key text;
CREATE UNIQUE INDEX audit_log_by_source ON users.audit_log (source_key) WHERE source_key IS NOT NULL;
