#pragma once
// Routes every speaker message by speaker_id to the speaker's actor, activating it on demand and
// passivating it when idle, without losing a message in between; supervises the speakers; serves
// registration and listing straight from PostgreSQL.
#include "actors/speakers/speakers.hpp"

namespace sbm::speakers {

// Expects validated settings (spawn_speakers checks them).
speaker_shard_actor spawn_speaker_shard(caf::actor_system& sys, speakers_settings settings);

}  // namespace sbm::speakers
