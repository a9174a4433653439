#pragma once
// The one retention mechanism for clinical text kept in PostgreSQL (issue 21): an actor that runs
// a family's purge at once, then every interval, and again at once while a batch comes back full.
// The timing and batching live here; what is purged, and how, stay with the family that owns the
// rows: the purge is a call of the family's store port (reports' notes) or its statement
// (verification sessions' drafts), so no family runs SQL on another's schema and a simulation's
// in-memory store purges as PostgreSQL does.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "messages/connections.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::db {

// One purge of at most `batch` rows older than `retention`; answers how many it purged.
using purge_call = std::function<void(std::chrono::milliseconds retention, std::uint32_t batch, completion<std::uint32_t>)>;
// Builds the purge over the link the retention actor makes (its own requests, db_timeout), so
// every completion runs in that actor's context.
using purge_opener = std::function<purge_call(const store_link&)>;

// Fields in this order: families fill it in one aggregate initialisation.
struct retention_purge {
  postgres_actor db;  // what the link reaches (null for a simulation's in-memory store)
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // Rows older than this are purged; 0 keeps them for ever (nothing is spawned).
  std::chrono::milliseconds retention{0};
  std::chrono::milliseconds interval{std::chrono::hours{1}};
  std::uint32_t batch = 1000;
  purge_opener open;
  std::string logger;  // the family's logger
  std::string what;    // what is purged, for log lines and errors: "notes of reports"
};

// The purge of a family's statement: $1 is the retention in milliseconds, $2 the batch; it purges
// at most $2 rows (chosen FOR UPDATE SKIP LOCKED, so two nodes purging at once do not queue) and
// returns one row per row purged.
purge_opener statement_purge(std::string statement);

// Throws std::invalid_argument when a retention is set without a purge, a positive interval,
// batch or timeout.
caf::actor spawn_retention_purge(caf::actor_system& sys, retention_purge settings);

}  // namespace sbm::db
