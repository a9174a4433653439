#pragma once
// The pattern store in memory, for simulation: the same port as actors/patterns/store_postgres.cpp,
// applied by the simulation's server actor (memory_server.hpp). It keeps what the table's
// constraints and trigger keep: a weight in [0, 1], a new version from one sequence on every write,
// an upsert from an older saga revision changing nothing.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "actors/patterns/store.hpp"

namespace sbm::sim {

struct patterns_tables {
  struct row {
    patterns::pattern_entry entry;
    std::int64_t saga_revision = 0;
    std::string embedder;
  };
  std::string instance_id = "sim-patterns";
  std::map<std::int64_t, row> rows;  // by pattern_id
  std::int64_t next_version = 1;
};

patterns::store_factory memory_patterns_store(caf::actor server, std::shared_ptr<patterns_tables> tables);

}  // namespace sbm::sim
