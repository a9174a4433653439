#include "actors/speakers/speakers.hpp"

#include <stdexcept>
#include <utility>

#include "actors/speakers/speaker_shard.hpp"

namespace sbm::speakers {

speaker_shard_actor spawn_speakers(caf::actor_system& sys, speakers_settings settings) {
  if (auto problem = validate(settings.policy))
    throw std::invalid_argument("speakers: bucket policy: " + *problem);
  if (!settings.db) throw std::invalid_argument("speakers: no PostgreSQL actor");
  if (settings.idle_timeout.count() <= 0 || settings.relay_interval.count() <= 0 ||
      settings.db_timeout.count() <= 0)
    throw std::invalid_argument("speakers: timeouts and intervals must be positive");
  return spawn_speaker_shard(sys, std::move(settings));
}

}  // namespace sbm::speakers
