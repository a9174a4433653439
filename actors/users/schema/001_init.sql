-- People and services that act in SBM; the role decides what the gateway lets them do.

CREATE TABLE users.users (
  id           text PRIMARY KEY CHECK (octet_length(id) BETWEEN 1 AND 128),
  role         text NOT NULL CHECK (role IN ('qa', 'qa_lead', 'admin')),
  display_name text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  disabled     boolean NOT NULL DEFAULT false
);
