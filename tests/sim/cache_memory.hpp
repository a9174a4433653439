#pragma once
// The InstaNote cache in memory, for simulation: the same port as the Redis adapter
// (actors/instanote/job_cache.hpp), applied by the simulation's server actor (memory_server.hpp),
// so it meets the server's faults (down, slow, refused, answer lost after the write) and expires
// entries by the server's virtual clock, as Redis does by its own.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>

#include "actors/instanote/job_cache.hpp"

namespace sbm::sim {

struct cache_tables {
  struct entry {
    std::string value;
    std::int64_t expires_ms = 0;
  };
  std::map<std::string, entry> entries;
};

instanote::cache_factory memory_cache(caf::actor server, std::shared_ptr<cache_tables> tables);

}  // namespace sbm::sim
