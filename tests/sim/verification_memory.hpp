#pragma once
// The verification store in memory, for simulation: the same port as store_postgres.cpp, its
// tables applied by the simulation's server actor (memory_server.hpp) so that faults, latency and
// virtual time reach it as they would reach PostgreSQL. It enforces what the PostgreSQL adapter
// enforces (the contract suite runs both): one answer per idempotency key, a submit only of an
// open unexpired session and only once, marks only while open, expiry returning the schedule.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/verification/store.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

struct verification_tables {
  struct session {
    verification::session_record record;  // head.marks unused: marks below, in seq order
    std::int64_t idle_ms = 0;
    std::map<std::int64_t, std::pair<std::int64_t, std::string>> marks;  // correction -> (seq, verdict)
  };
  struct entry {
    scheduled_verification row;
    std::int64_t session_id = 0;
  };
  struct key {
    std::string digest;
    std::uint8_t outcome = 0;
    std::string answer;
    std::int64_t created_ms = 0;
  };
  std::map<std::int64_t, session> sessions;
  std::vector<entry> schedule;
  std::map<std::pair<std::string, std::string>, key> keys;  // (principal, key)
  std::int64_t next_session = 1, next_seq = 1, next_entry = 1;
  // The planted bug (test-only): an event delivered again (the outbox relay delivers at least
  // once) adds a second schedule entry. The clinic-day scenario must catch it.
  bool skip_event_dedup = false;
};

verification::store_factory memory_verification_store(caf::actor server, std::shared_ptr<verification_tables> tables);

}  // namespace sbm::sim
