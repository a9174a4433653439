#pragma once
// The one retention mechanism for clinical text kept in PostgreSQL (issue 21): an actor that runs
// a family's purge statement at once, then every interval, and again at once while a batch comes
// back full. The timing and batching live here; what is purged, and the SQL that does it, stay
// with the family that owns the rows (reports' notes, verification sessions' drafts), so no
// family runs SQL on another's schema.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "messages/connections.hpp"

namespace sbm::db {

// Fields in this order: families fill it in one aggregate initialisation.
struct retention_purge {
  postgres_actor db;
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // Rows older than this are purged; 0 keeps them for ever (nothing is spawned).
  std::chrono::milliseconds retention{0};
  std::chrono::milliseconds interval{std::chrono::hours{1}};
  std::uint32_t batch = 1000;
  // The family's statement: $1 is the retention in milliseconds, $2 the batch; it purges at most
  // $2 rows (chosen FOR UPDATE SKIP LOCKED, so two nodes purging at once do not queue) and
  // returns one row per row purged.
  std::string statement;
  std::string logger;  // the family's logger
  std::string what;    // what is purged, for log lines and errors: "notes of reports"
};

// Throws std::invalid_argument when a retention is set without a database, statement, positive
// interval or batch.
caf::actor spawn_retention_purge(caf::actor_system& sys, retention_purge settings);

}  // namespace sbm::db
