-- Who did what, when and from where: every bucket pin/unpin, user change and refused request.
-- Append-only in the database itself: whatever the code (or a person with the application's
-- credentials) tries, rows cannot be changed or removed through UPDATE, DELETE or TRUNCATE.

ALTER TABLE users.users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE users.audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'service', 'anonymous')),
  action     text NOT NULL,
  target     text NOT NULL DEFAULT '',
  outcome    text NOT NULL CHECK (outcome IN ('success', 'refused')),
  status     integer NOT NULL,
  peer       text NOT NULL DEFAULT '',
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object')
);

-- Filters are equality on actor or action plus a time range, newest first by id.
CREATE INDEX audit_log_by_actor ON users.audit_log (actor, id);
CREATE INDEX audit_log_by_action ON users.audit_log (action, id);
CREATE INDEX audit_log_by_at ON users.audit_log (at);

CREATE FUNCTION users.audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'users.audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete
  BEFORE UPDATE OR DELETE ON users.audit_log
  FOR EACH ROW EXECUTE FUNCTION users.audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON users.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION users.audit_log_refuse_change();
