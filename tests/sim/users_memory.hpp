#pragma once
// The users store in memory, for simulation: the same port as actors/users/store_postgres.cpp,
// applied by the simulation's server actor (memory_server.hpp). It keeps what the PostgreSQL
// adapter keeps: a change and its audit row together, one answer per Idempotency-Key, a user id
// registered once, an audit record under a source_key once.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/users/store.hpp"

namespace sbm::sim {

struct users_tables {
  struct key {
    std::string digest;
    user_record answer;
    std::int64_t created_ms = 0;
  };
  std::map<std::string, user_record> users;
  std::vector<audit_record> audit;  // by id, oldest first
  std::map<std::pair<std::string, std::string>, key> keys;
  std::int64_t next_audit = 1;
};

users::store_factory memory_users_store(caf::actor server, std::shared_ptr<users_tables> tables);

}  // namespace sbm::sim
