-- Client scoping (issue 21): a hospital's own reviewers see only their clients' scheduled
-- verifications. The client comes with the cause (the bucket change, the filed report); rows
-- scheduled before this column existed concern no known client ('') and are shown to unscoped
-- readers only, as audit rows about no client are.
ALTER TABLE verification.schedule ADD COLUMN client_id text NOT NULL DEFAULT '';
CREATE INDEX schedule_by_client ON verification.schedule (client_id, id);
