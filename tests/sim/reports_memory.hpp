#pragma once
// The reports store in memory, for simulation: the same port as actors/reports/store_postgres.cpp
// (see actors/reports/store.hpp for how to use it), its tables applied by the simulation's server
// actor (memory_server.hpp) so that faults, latency and virtual time reach it as they reach
// PostgreSQL: down, slow, every Nth call refused unapplied (an error mid-transaction rolls back
// whole, so nothing of it stays), every Nth answer lost after the commit (outcome unknown).
// It enforces what the PostgreSQL adapter enforces (the contract suite runs both): one write per
// Idempotency-Key, a verdict only over the status it was computed from, a session's verdicts
// once, and a saga row moved only under its claim, revision and step.
//
// A scenario reads the tables directly to check its invariants: each report keeps the key it was
// filed under, so "every acknowledged report exists exactly once" is a count over `reports`.
#include <caf/actor.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/reports/store.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

struct reports_tables {
  struct report_row {
    reports::stored_report stored;  // report.saga_* and saga_log are filled on reading
    std::string principal, idem_key;  // the key it was filed under (empty: none)
  };
  struct saga_row {
    std::string step = "index";
    std::int64_t revision = 0;
    std::int32_t attempts = 0;
    std::string last_error;
    std::string claim;  // empty: unclaimed
    std::int64_t next_attempt_ms = 0;
    std::int64_t completed_ms = 0;
  };
  struct key_row {
    std::string digest;
    std::uint8_t outcome = 0;
    std::string answer;
    std::int64_t created_ms = 0;
  };
  std::map<std::int64_t, report_row> reports;
  std::map<std::int64_t, saga_row> sagas;
  std::map<std::int64_t, std::vector<saga_entry>> log;  // by report, oldest first
  std::map<std::pair<std::string, std::string>, key_row> keys;  // (principal, key)
  std::set<std::int64_t> sessions;                              // verification sessions applied
  std::vector<std::int64_t> sessions_in_order;                  // the same, in the order applied
  // InstaNote's jobs (job id -> speaker id), which the job check reads.
  std::map<std::string, std::string> draft_jobs;
  std::int64_t next_report = 1;
};

reports::store_factory memory_reports_store(caf::actor server, std::shared_ptr<reports_tables> tables);

}  // namespace sbm::sim
