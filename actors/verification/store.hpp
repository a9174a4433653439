#pragma once
// The verification family's port to its durable state, in the family's words: sessions, their
// marks and residual counts, the submit, the schedule, and the idempotency keys of the writes.
// The actors never hold SQL: store_postgres.cpp is the only file with it; tests/sim/ has an
// in-memory store for simulation. Both adapters enforce what guards correctness (a submit only of
// an open, unexpired session and only once; marks only while open; one write per key), and one
// contract test suite runs against both, so they cannot drift.
//
// Calls are asynchronous: each takes a completion that runs in the calling actor's context
// (runtime/db/store_link.hpp). An error whose outcome_unknown() holds may or may not have been
// applied; every write is safe to repeat under its key.
#include <caf/optional.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/context.hpp"
#include "messages/verification.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::verification {

using db::completion;

// A session as kept: the view without its jobs, which stay as stored (a Fernet token, or plain
// JSON in rows from before verification/005, or neither once purged), and the residual counts.
struct session_record {
  session_view head;  // jobs empty; outcome read when effects were recorded
  caf::optional<std::string> content_token;
  caf::optional<std::string> content_plain;
  std::vector<job_residual> residuals;
};

struct new_session {
  std::string speaker_id, client_id, owner;
  std::int64_t from_ms = 0, to_ms = 0;
  std::vector<std::string> error_types;
  std::uint32_t max_jobs = 0;
  std::string source;
  bool stale = false;
  std::int64_t stale_since_ms = 0;
  std::string stale_reason;
  std::string content_token;
  std::chrono::milliseconds idle_timeout{0};
};

// A session's status as it is now, expiry applied.
struct session_status {
  std::string status;
  std::int64_t expires_at_ms = 0;
};

struct marks_saved {
  session_status now;
  std::vector<session_mark> marks;  // all of the session's, in the order last committed
};

struct submitted {
  enum kind { done, not_open, key_taken } outcome = done;
  std::int64_t submitted_at_ms = 0;
};

struct sweep_result {
  std::vector<std::int64_t> expired;
  std::vector<std::int64_t> unfinished;  // submitted a while ago with effects not done
};

struct schedule_entry {
  std::string speaker_id, priority, reason, client_id;
  std::int64_t source_event_id = 0;  // one entry per event id ...
  std::string source_key;            // ... or per key (exactly one of the two is set)
};

class store {
 public:
  virtual ~store() = default;

  // --- sessions ---
  // The key's stored answer (younger than `retention`), its reuse by another request, or absent.
  virtual void find_key(const request_context& ctx, std::chrono::seconds retention,
                        completion<db::idempotency::lookup_result> done) = 0;
  // Creates an open session expiring after its idle timeout, takes the speaker's scheduled
  // entries and records ctx's key (answer: the id) in one commit. errc::conflict when the key was
  // stored meanwhile.
  virtual void create(const new_session& s, const request_context& ctx, completion<std::int64_t> done) = 0;
  // nullopt: no such session. An open session past its expiry reads as expired.
  virtual void load(std::int64_t id, const deadline& until, completion<caf::optional<session_record>> done) = 0;
  // Uses the session: an open one gets a new expiry; one past it expires now and returns its
  // schedule entries. nullopt: no such session.
  virtual void touch(std::int64_t id, const deadline& until, completion<caf::optional<session_status>> done) = 0;
  // Touches, then saves the marks (one per correction, a new verdict moves it last) and residual
  // counts only if the session is still open. nullopt: no such session.
  virtual void save_marks(std::int64_t id, const std::vector<session_mark>& marks,
                          const std::vector<job_residual>& residuals, const deadline& until,
                          completion<caf::optional<marks_saved>> done) = 0;
  // Submits an open, unexpired session (its schedule entries done) and records ctx's key, once.
  virtual void submit(std::int64_t id, const std::string& actor, const request_context& ctx,
                      completion<submitted> done) = 0;
  virtual void finish_effects(std::int64_t id, const submit_outcome& outcome, completion<bool> done) = 0;
  // When the session's drafts were purged (0: not purged, or no such session).
  virtual void drafts_purged_at(std::int64_t id, const deadline& until, completion<std::int64_t> done) = 0;
  // Expires what passed its idle time (schedule entries return), lists submits older than 5 s
  // whose effects are not done (at most 100), and forgets keys older than `retention`.
  virtual void sweep(std::chrono::seconds retention, completion<sweep_result> done) = 0;

  // --- the schedule ---
  // Idempotent on the entry's event id or key: a repeat adds nothing and succeeds.
  virtual void schedule(const schedule_entry& e, completion<bool> done) = 0;
  // Keyed entries (source_key set), all in one commit or none, each idempotent as schedule().
  // This default stores them one by one, for adapters without a batch form (tests/sim).
  virtual void schedule_keyed(const std::vector<schedule_entry>& entries, completion<bool> done) {
    if (entries.empty()) return done(true);
    auto left = std::make_shared<std::size_t>(entries.size());
    auto failed = std::make_shared<bool>(false);
    for (const auto& e : entries)
      schedule(e, [left, failed, done](caf::expected<bool> ok) {
        if (*failed) return;
        if (!ok) {
          *failed = true;
          return done(std::move(ok.error()));
        }
        if (--*left == 0) done(true);
      });
  }
  virtual void list_schedule(const schedule_query& q, std::uint32_t limit, completion<verification_schedule> done) = 0;
};

using store_factory = std::function<std::unique_ptr<store>(const db::store_link&)>;

std::unique_ptr<store> make_postgres_store(const db::store_link& link);

// The statement the shared retention purge (runtime/db/retention.hpp) runs for drafts.
extern const char* const drafts_purge_sql;

}  // namespace sbm::verification
