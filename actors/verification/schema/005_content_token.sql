-- Draft text at rest is encrypted or not kept (issue 21). Expand-style, so nodes from before and
-- after this version can share the database: sessions are now written to content_token (a Fernet
-- token of the same JSON, under reports.fernet-key) with content NULL; rows written before it keep
-- their plain content and still read. Past verification.draft-retention a closed session's drafts
-- are dropped (both columns NULL, content_purged_at set); its marks, residuals and outcome stay.
-- A node from before this version cannot read a session written after it (no plain content): it
-- answers 500 for that session rather than show it without its drafts.
ALTER TABLE verification.sessions ALTER COLUMN content DROP NOT NULL;
ALTER TABLE verification.sessions ADD COLUMN content_token text;
ALTER TABLE verification.sessions ADD COLUMN content_purged_at timestamptz;
-- What the purge looks for: sessions still holding drafts, oldest first.
CREATE INDEX sessions_with_drafts ON verification.sessions (created_at)
  WHERE content IS NOT NULL OR content_token IS NOT NULL;
