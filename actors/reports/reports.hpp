#pragma once
// The reports family from outside: one call spawns the reports actor (validation, storage,
// encrypted notes, reads) and, linked to it, the saga that carries every committed report through
// index -> notify -> schedule, retrying from the durable outbox (reports.report_saga).
#include <chrono>
#include <cstdint>
#include <string>

#include "actors/reports/core/report_rules.hpp"
#include "actors/reports/store.hpp"
#include "messages/connections.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "messages/speakers.hpp"
#include "messages/verification.hpp"
#include "runtime/resilience/backoff.hpp"

namespace caf {
class actor_system;
}

namespace sbm::reports {

struct reports_settings {
  // Where the family's state lives (store.hpp): empty for PostgreSQL over db, filings and
  // instanote; a simulation sets its in-memory store (and may leave those handles null).
  store_factory store;
  postgres_actor db;
  // Connections of the same database kept for filings (their key checks and the group-committed
  // INSERT), so a filing never waits in a worker's queue behind the sagas' statements, which run
  // on `db`. Null: filings share `db`.
  postgres_actor filings;
  postgres_actor instanote;               // null: job ownership is never checked (and logged so)
  speaker_shard_actor speakers;           // required: a report names an existing speaker
  pattern_index_actor patterns;           // null: the index step fails and is retried until set
  verification_scheduler_actor schedule;  // null: the schedule step fails and is retried
  pattern_learning_subscriber learning;   // null: nobody listens today; the step records that
  std::string fernet_key;                 // base64url, 32 bytes
  report_limits limits;
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // The speakers shard and InstaNote answer within this, or the filing fails (speakers) or goes
  // on without the job check (InstaNote, which SBM may not depend on).
  std::chrono::milliseconds lookup_timeout{std::chrono::seconds{3}};
  std::chrono::milliseconds step_timeout{std::chrono::seconds{10}};
  // How often the saga looks for due steps (failed ones whose backoff ran out, claims that lapsed).
  std::chrono::milliseconds relay_interval{std::chrono::seconds{1}};
  // A node running a report's saga holds it this long past its last progress; after that another
  // node (or this one after a restart) takes it over. Steps are idempotent, so an overlap only
  // repeats work.
  std::chrono::milliseconds claim{std::chrono::seconds{30}};
  // Waits this long before each saga step. For tests only: it opens a window in which a node can
  // be killed between two steps deterministically. 0 in production.
  std::chrono::milliseconds step_delay{0};
  // Failed steps retry forever (a stored report must end up indexed): max_retries is ignored.
  resilience::backoff_policy backoff{0, std::chrono::seconds{1}, std::chrono::seconds{60}, 0.2};
  std::uint32_t max_running = 32;  // sagas this node runs at once
  // Sagas nudged while max_running run wait in memory up to this many; past it they are left to
  // the poll, which finds them in PostgreSQL, so memory stays bounded under any load.
  std::uint32_t max_waiting = 10000;
  // While filings arrive (one came within saga_quiet), the sagas keep at most share.background
  // statements in flight, until more than share.backlog sagas are undone on this node
  // (running and waiting; above max_waiting it counts as max_waiting). core/report_rules.hpp.
  saga_share_rule share;
  std::chrono::milliseconds saga_quiet{100};
  // Filings checked and waiting for their INSERT; past it filers get errc::overloaded.
  std::uint32_t max_queued = 1000;
  // Filing statements running at once (a node: reports.filing-connections, one per connection):
  // filings checked while all run wait and go in the next statement together (group commit).
  std::uint32_t filing_batches = 2;
  // Notes (clinical text, encrypted) of reports older than this are purged: their tokens are set
  // to NULL, checked every notes_purge_interval, at most notes_purge_batch rows per statement.
  // 0 keeps notes for ever.
  std::chrono::milliseconds notes_retention{0};
  std::chrono::milliseconds notes_purge_interval{std::chrono::hours{1}};
  std::uint32_t notes_purge_batch = 1000;
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
};

// Throws std::invalid_argument when the settings cannot work (no database or speakers handle, a
// bad Fernet key, non-positive timeouts).
reports_actor spawn_reports(caf::actor_system& sys, reports_settings settings);

}  // namespace sbm::reports
