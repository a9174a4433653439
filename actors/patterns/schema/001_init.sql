-- Error patterns: what each error report teaches (SPEC "Error pattern"). The source of truth of the
-- pattern index: its in-memory graph and its snapshot file are rebuilt from here. Written only by
-- the pattern index actor, which acknowledges an upsert or delete after it committed.

-- Names this database's patterns. A snapshot records it, so one made against another database
-- (another node's, or a re-created one whose ids and versions happen to repeat) is never taken for
-- this one's; a restored backup keeps it together with the versions it describes.
CREATE TABLE patterns.instance (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  instance_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO patterns.instance DEFAULT VALUES;

-- Versions come from one sequence, so a version never repeats, even for a pattern deleted and
-- filed again: the snapshot check (count, max, sums of versions) then sees every change.
CREATE SEQUENCE patterns.pattern_version;

CREATE TABLE patterns.patterns (
  pattern_id                     bigint PRIMARY KEY CHECK (pattern_id > 0),  -- the report's id
  speaker_id                     text NOT NULL CHECK (octet_length(speaker_id) BETWEEN 1 AND 128),
  client_id                      text NOT NULL CHECK (octet_length(client_id) <= 128),
  bucket_type                    text NOT NULL DEFAULT '',
  original_text                  text NOT NULL CHECK (octet_length(original_text) >= 1),
  corrected_text                 text NOT NULL DEFAULT '',
  context_text                   text NOT NULL DEFAULT '',
  error_categories               text[] NOT NULL DEFAULT '{}',
  audio_quality                  text NOT NULL DEFAULT '',
  speaker_clarity                text NOT NULL DEFAULT '',
  background_noise               text NOT NULL DEFAULT '',
  number_of_speakers             integer NOT NULL DEFAULT 1,
  overlapping_speech             boolean NOT NULL DEFAULT false,
  requires_specialized_knowledge boolean NOT NULL DEFAULT false,
  status                         text NOT NULL
                                 CHECK (status IN ('pending', 'rectified', 'not_rectified')),
  -- BETWEEN also keeps NaN out: PostgreSQL sorts it above every number.
  weight                         double precision NOT NULL CHECK (weight BETWEEN 0 AND 1),
  embedder                       text NOT NULL,  -- name() of the embedder that indexed the row
  created_at                     timestamptz NOT NULL DEFAULT now(),  -- the report's filing time
  updated_at                     timestamptz NOT NULL DEFAULT now(),
  version                        bigint NOT NULL
);

-- Every write takes a new version and stamps updated_at, also one made by hand in psql: a
-- snapshot taken before it is then seen as stale and the index is rebuilt from this table.
CREATE FUNCTION patterns.stamp_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := nextval('patterns.pattern_version');
  IF TG_OP = 'UPDATE' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER patterns_stamp_version
  BEFORE INSERT OR UPDATE ON patterns.patterns
  FOR EACH ROW EXECUTE FUNCTION patterns.stamp_version();
