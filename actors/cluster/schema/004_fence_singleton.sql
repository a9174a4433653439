-- The fence of once-per-cluster work, as cluster.fence_speaker is of speaker writes: raises SB001
-- unless p_epoch's lease is live, SB002 unless that lease holds p_name. The outbox relay ends each
-- stamp with it, so a relay whose member lost the singleton (its lease lapsed while it was frozen,
-- or another member took it) can no longer mark rows as delivered. Both rows are share-locked: a
-- takeover (cluster.hold_singleton) or a release waits for the stamp's commit.
CREATE FUNCTION cluster.fence_singleton(p_name text, p_epoch bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM cluster.leases WHERE epoch = p_epoch AND expires_at > clock_timestamp() FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the lease of epoch % is not held', p_epoch USING ERRCODE = 'SB001';
  END IF;
  PERFORM 1 FROM cluster.singletons WHERE name = p_name AND epoch = p_epoch FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'singleton % is not held by epoch %', p_name, p_epoch USING ERRCODE = 'SB002';
  END IF;
END
$$;
