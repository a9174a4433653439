-- Client scoping: a user may be limited to some clients (a hospital's own reviewers see only their
-- hospital's speakers, reports, patterns, jobs and audit rows). NULL means unlimited (the vendor's
-- own staff keep today's reach); an empty array is a user limited to no client at all.

ALTER TABLE users.users ADD COLUMN client_ids text[]
  CHECK (client_ids IS NULL OR array_position(client_ids, NULL) IS NULL);

-- The client an audit row concerns ('' when none, e.g. a user change or a refused request), so a
-- scoped reader is shown only its clients' rows.
ALTER TABLE users.audit_log ADD COLUMN client_id text NOT NULL DEFAULT '';
CREATE INDEX audit_log_by_client ON users.audit_log (client_id, id);
