-- Node membership as leases, and speaker ownership fenced by the owner's lease epoch. Time is
-- PostgreSQL's clock only (now(), clock_timestamp()): nodes' clocks never judge a lease.

-- Every lease a node takes gets the next number: the fencing number its writes carry. A node
-- that restarts, or that lost its lease and takes a new one, writes with a higher epoch.
CREATE SEQUENCE cluster.epochs;

CREATE TABLE cluster.leases (
  epoch       bigint PRIMARY KEY,
  address     text NOT NULL CHECK (octet_length(address) BETWEEN 1 AND 300),  -- host:port (BASP)
  node_name   text NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  renewed_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);

CREATE INDEX leases_by_expiry ON cluster.leases (expires_at);

-- Written only when a speaker changes owner (its first fenced write on a new node), never per
-- request: the owner's lease renewal keeps all of its speakers at once.
CREATE TABLE cluster.speaker_owners (
  speaker_id text PRIMARY KEY,
  epoch      bigint NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX speaker_owners_by_epoch ON cluster.speaker_owners (epoch);

-- The fence, called in every durable speaker write's transaction by a clustered node. It raises
-- (and so rolls the write back) unless the writer's lease is live and the speaker is the
-- writer's: owned by its epoch, owned by nobody, or owned by an epoch whose lease is gone (then
-- the writer takes it over, which is the one write of the ownership row per move).
--   SB001: the writer's own lease is not live.   SB002: the speaker is another live lease's.
-- The writer's lease row is share-locked, so its renewal or release waits for this write; the
-- ownership row is locked, so a take-over by another node waits for this write to commit and then
-- sees it (writes of one speaker are ordered across nodes by that row).
CREATE FUNCTION cluster.fence_speaker(p_speaker text, p_epoch bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  holder bigint;
BEGIN
  PERFORM 1 FROM cluster.leases WHERE epoch = p_epoch AND expires_at > clock_timestamp() FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the lease of epoch % is not held', p_epoch USING ERRCODE = 'SB001';
  END IF;
  SELECT epoch INTO holder FROM cluster.speaker_owners WHERE speaker_id = p_speaker FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO cluster.speaker_owners (speaker_id, epoch) VALUES (p_speaker, p_epoch)
      ON CONFLICT (speaker_id) DO NOTHING;
    IF FOUND THEN
      RETURN;
    END IF;
    -- another node claimed it meanwhile: judge its claim like any owner's
    SELECT epoch INTO holder FROM cluster.speaker_owners WHERE speaker_id = p_speaker FOR UPDATE;
  END IF;
  IF holder = p_epoch THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM cluster.leases WHERE epoch = holder AND expires_at > clock_timestamp()) THEN
    RAISE EXCEPTION 'the speaker is owned by the live lease of epoch %', holder USING ERRCODE = 'SB002';
  END IF;
  UPDATE cluster.speaker_owners SET epoch = p_epoch, claimed_at = now() WHERE speaker_id = p_speaker;
END
$$;
