-- A node gives a speaker's ownership row back when it passivates the speaker (idle, or handed
-- off because the placement moved it): the row exists only while its owner has the speaker
-- active, so a speaker's new owner claims it at activation without waiting for the old owner's
-- lease to lapse. Only the holder's own row goes: a row another epoch took meanwhile stays.
CREATE FUNCTION cluster.release_speaker(p_speaker text, p_epoch bigint) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM cluster.speaker_owners WHERE speaker_id = p_speaker AND epoch = p_epoch;
$$;
