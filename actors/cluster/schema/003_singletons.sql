-- Work that must run once per cluster, not once per node (the speakers' outbox relay), is a named
-- singleton: one row per name holding the epoch of the member that runs it. The holder keeps it
-- while its lease is live; once that lease lapses or is given back (a stop) the next member to ask
-- takes it, and a draining member gives its singletons back at once. The epoch is the fence: a
-- member whose lease is not live holds nothing, whatever the row says.
CREATE TABLE cluster.singletons (
  name       text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 100),
  epoch      bigint NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);

-- True when p_epoch holds p_name after the call: it held it already, or took it because nobody
-- did or the holder's lease is not live. False while another live lease holds it. Raises SB001
-- (as the speaker fence does) when p_epoch's own lease is not live. The caller's lease row is
-- share-locked like the fence's, so its release waits for this claim.
CREATE FUNCTION cluster.hold_singleton(p_name text, p_epoch bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  holder bigint;
BEGIN
  PERFORM 1 FROM cluster.leases WHERE epoch = p_epoch AND expires_at > clock_timestamp() FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the lease of epoch % is not held', p_epoch USING ERRCODE = 'SB001';
  END IF;
  INSERT INTO cluster.singletons (name, epoch) VALUES (p_name, p_epoch) ON CONFLICT (name) DO NOTHING;
  IF FOUND THEN
    RETURN true;
  END IF;
  SELECT epoch INTO holder FROM cluster.singletons WHERE name = p_name FOR UPDATE;
  IF holder = p_epoch THEN
    RETURN true;
  END IF;
  IF EXISTS (SELECT 1 FROM cluster.leases WHERE epoch = holder AND expires_at > clock_timestamp()) THEN
    RETURN false;
  END IF;
  UPDATE cluster.singletons SET epoch = p_epoch, claimed_at = now() WHERE name = p_name;
  RETURN true;
END
$$;
