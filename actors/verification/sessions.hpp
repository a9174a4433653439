#pragma once
// Verification sessions: one session actor per session, under the sessions supervisor.
//
// The supervisor starts sessions (speaker -> InstaNote jobs through the jobs actor and its breaker,
// stale cache allowed -> each draft through the correction actor -> one commit of the session, its
// schedule entries taken and the Idempotency-Key) and activates a session actor from PostgreSQL on
// the first message for it (after a node restart too). A session actor serialises what happens to
// its session: reads, saves of marks, the one submit and the submit's effects on other families
// (pattern verdicts in reports, quality samples through the speaker actor, the audit record),
// each idempotent, so a submit interrupted by a crash is finished on the next activation or sweep.
//
// Expiry is durable: every use moves `expires_at` to now + idle timeout in PostgreSQL; a sweep on
// the supervisor's timer expires the sessions past it and returns their schedule entries to
// "scheduled". A session actor stops itself after the idle timeout without messages.
//
// Drafts are clinical text: a session's jobs, drafts and corrections are kept as a Fernet token
// under the notes' key (rows from before verification/005 hold plain jsonb and still read). Past
// draft_retention, closed sessions (expired, or submitted with their effects done) lose them
// through the shared retention mechanism (runtime/db/retention.hpp), linked to the supervisor;
// the session, its marks and its outcome stay for audit and weights.
#include <chrono>
#include <cstdint>
#include <string>

#include "actors/verification/store.hpp"
#include "messages/connections.hpp"
#include "messages/instanote.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "messages/verification.hpp"

namespace caf {
class actor_system;
}

namespace sbm::verification {

struct sessions_settings {
  postgres_actor db;
  // The port the actors keep their state behind; none: PostgreSQL through `db` (simulations set
  // an in-memory store and may leave `db` null).
  store_factory make_store;
  instanote_actor jobs;
  correction_actor corrections;
  speaker_shard_actor speakers;
  reports_actor reports;
  audit_actor audit;  // null: submits are not put on record (tests only; the node always sets it)
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{30}};  // verification.session-idle-timeout
  std::chrono::milliseconds sweep_interval{std::chrono::seconds{10}};  // verification.session-sweep-interval
  std::uint32_t max_active = 1000;  // verification.max-active-sessions: session actors at once
  std::uint32_t max_jobs_cap = 100;  // instanote.max-jobs
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // Calls to other families for work without a deadline (a submit's effects run to the end even
  // when the client stopped waiting: a retry with the same key then finds them done).
  std::chrono::milliseconds call_timeout{std::chrono::seconds{10}};
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
  std::string content_key;  // reports.fernet-key: the drafts are kept encrypted under it (required)
  // verification.draft-retention (0 keeps drafts), looked for every draft_purge_interval
  // (verification.draft-purge-interval), at most draft_purge_batch sessions per statement.
  std::chrono::milliseconds draft_retention{0};
  std::chrono::milliseconds draft_purge_interval{std::chrono::hours{1}};
  std::uint32_t draft_purge_batch = 1000;
};

// Throws std::invalid_argument when a handle is missing, a bound is zero or the key is not a
// Fernet key.
verification_sessions_actor spawn_sessions(caf::actor_system& sys, sessions_settings settings);

}  // namespace sbm::verification
