#pragma once
// The speakers family's port to its durable state, in the family's words: a speaker's row and
// its newest samples, one versioned change at a time, registration, history, the trend, listing,
// the idempotency keys of the writes and, in a cluster, the fence of ownership by lease epoch.
// The actors never hold SQL: store_postgres.cpp is the only file with it; tests/sim/ has an
// in-memory store for simulation. Both adapters enforce what guards correctness (the version, a
// job counted once, one write per key, the fence) and one contract suite runs against both.
//
// A million speakers share one store: it holds no actor, and each call takes the caller's link
// (runtime/db/store_link.hpp), made for the call, so a speaker pays nothing for it while idle.
// Completions run in the caller's context; an error whose outcome_unknown() holds may or may not
// have been applied, and every write is safe to repeat under its key.
#include <caf/actor_clock.hpp>
#include <caf/optional.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/speakers/speaker_rows.hpp"
#include "messages/context.hpp"
#include "messages/events.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::speakers {

using db::completion;

// The lease epoch that fences a write: none outside a cluster (nothing fenced). An epoch of a
// lease not held (0 before the first one) refuses every write.
using fence_epoch = std::optional<std::int64_t>;

// What an activation reads: nothing when the speaker is not registered.
struct loaded_speaker {
  caf::optional<speaker_record> row;
  std::vector<double> window;  // the newest samples, oldest first
};

struct new_sample {
  std::string job_id;
  double errors_per_100_words = 0;
  std::string actor;
};

struct history_line {
  std::string kind;  // "policy", "pin", "unpin"
  std::string previous_bucket, new_bucket, reason, actor;
};

// A bucket change for the outbox (the relay publishes it as bucket_changed).
struct bucket_move {
  std::string previous_bucket, new_bucket, reason;
};

// The audit entry a pin or unpin commits with (the relay hands it to the audit log).
struct audit_line {
  std::string action;
  audit_origin by;
  std::string bucket, reason;
};

enum class pin_change : std::uint8_t { keep, pin, unpin };

// One change of a speaker, computed by its actor from the version it holds: applied whole, or
// refused whole when the row has moved past `version`.
struct speaker_change {
  std::string speaker_id, client_id;
  std::int64_t version = 0;
  std::string bucket;
  std::uint32_t bucket_changes = 0;  // added to the count
  pin_change pin = pin_change::keep;
  std::string pin_reason, pinned_by;  // with pin_change::pin
  caf::optional<new_sample> sample;   // counted once per job; the window goes with it
  std::uint32_t window_size = 0;
  double window_mean = 0;
  std::vector<history_line> history;
  std::vector<bucket_move> moves;
  caf::optional<audit_line> audit;
};

// What the commit stamped.
struct change_saved {
  std::int64_t updated_at_ms = 0;
  std::int64_t pinned_at_ms = 0;  // 0 when not pinned
};

struct new_speaker {
  std::string speaker_id, client_id, display_name, bucket, actor;
};

// A key's stored answer, read back typed: `view` holds the speaker a replayed write left.
struct keyed_answer {
  db::idempotency::verdict v = db::idempotency::verdict::absent;
  db::idempotency::stored_answer stored;  // outcome != 0: a stored refusal
  speaker_view view;
};

// The outbox's targets, each with its own stamp of the rows it has (outbox_relay.hpp).
enum class outbox_target : std::uint8_t { bus, stream, audit };

// An outbox row as one target takes it: `event` for the bus and the stream, `record` for audit.
struct outbox_entry {
  std::int64_t id = 0;
  std::int64_t created_ms = 0;  // when the row was committed (unix ms), for the target's lag
  bucket_changed event;
  audit_record record;
};

struct list_filter {
  caf::optional<std::string> bucket, client_id, after;
  std::uint32_t fetch = 0;
  client_scope scope;
};

class store {
 public:
  virtual ~store() = default;

  // The row and its newest `window` samples. With an epoch (a clustered node), the activation
  // claims the speaker's ownership row in the same transaction: errc::stale_owner when the
  // node's lease is not live or another live lease holds the speaker.
  virtual void load(const db::store_link& via, const std::string& speaker_id, std::uint32_t window,
                    fence_epoch epoch, completion<loaded_speaker> done) const = 0;
  // Applies a change under `version` and records ctx's key with the row as the change leaves it,
  // in one commit, fenced by `epoch` (0: no cluster). Refusals, nothing applied: errc::conflict
  // (the version moved), errc::duplicate (the sample's job is counted already), errc::in_progress
  // (ctx's key was stored meanwhile), errc::stale_owner (the fence).
  virtual void save(const db::store_link& via, const speaker_change& c, const request_context& ctx,
                    fence_epoch epoch, completion<change_saved> done) const = 0;
  // Inserts the speaker with its "register" history line and ctx's key, fenced by `epoch`, whose
  // ownership row is given back at once (the owner by placement claims it on activation).
  // errc::duplicate when the id is registered already.
  virtual void create(const db::store_link& via, const new_speaker& s, const request_context& ctx,
                      fence_epoch epoch, completion<speaker_record> done) const = 0;
  // The stored answer of ctx's key, younger than `retention`.
  virtual void find_key(const db::store_link& via, const request_context& ctx,
                        std::chrono::seconds retention, completion<keyed_answer> done) const = 0;
  // The newest `limit` history lines, oldest first.
  virtual void history(const db::store_link& via, const std::string& speaker_id, std::uint32_t limit,
                       completion<std::vector<history_entry>> done) const = 0;
  // Speakers by id after the cursor, at most `fetch`, of the scope's clients.
  virtual void list(const db::store_link& via, const list_filter& f,
                    completion<std::vector<speaker_record>> done) const = 0;
  // q's samples into `out` (oldest first, at most `limit`, `truncated` when more are in range);
  // false when the speaker is not registered or outside q.scope.
  virtual void samples(const db::store_link& via, const samples_query& q, std::uint32_t limit,
                       completion<std::pair<bool, quality_samples>> done) const = 0;
  // Gives the ownership row of `epoch` back (another epoch's row stays).
  virtual void release(const db::store_link& via, const std::string& speaker_id, std::int64_t epoch,
                       completion<bool> done) const = 0;

  // --- the outbox (the family's own table, filled by save; the outbox relay reads it) ---
  // The oldest `batch` rows of the target's topic it does not have yet, in id (commit) order.
  virtual void outbox_pending(const db::store_link& via, outbox_target target, std::uint32_t batch,
                              completion<std::vector<outbox_entry>> done) const = 0;
  // The target has row `id` (a second stamp keeps the first). In a cluster (`relay_epoch` > 0) the
  // stamp is fenced like a speaker write: refused (errc::stale_owner), nothing stamped, unless the
  // lease of that epoch lives and holds the relay singleton (outbox_relay_singleton).
  virtual void outbox_stamp(const db::store_link& via, outbox_target target, std::int64_t id,
                            std::int64_t relay_epoch, completion<bool> done) const = 0;
  // Deletes rows every target of theirs has, older than `retention`, and keys older than
  // `key_retention`.
  virtual void outbox_purge(const db::store_link& via, std::chrono::hours retention,
                            std::chrono::seconds key_retention, completion<bool> done) const = 0;
};

using store_ptr = std::shared_ptr<const store>;

// The request timeout of a store call for work with a deadline: what is left of it (the connection
// pool answers by then, messages/context.hpp) and a second for that answer to travel back, so a
// write's typed outcome is not lost to the caller's own timeout.
inline constexpr std::chrono::milliseconds store_answer_travel{std::chrono::seconds{1}};

// The answer to a keyed speaker write from its key: the stored view, a stored refusal, a refusal
// for a reused key, or `otherwise` when nothing is stored under the key.
inline caf::expected<speaker_view> answer_of(const keyed_answer& found, const request_context& ctx,
                                             caf::error otherwise, std::uint32_t window_capacity) {
  switch (found.v) {
    case db::idempotency::verdict::absent: return otherwise;
    case db::idempotency::verdict::reused: return db::idempotency::reused(ctx);
    case db::idempotency::verdict::replay: break;
  }
  if (found.stored.outcome != 0) return db::idempotency::refusal_of(found.stored);
  auto view = found.view;
  view.window_capacity = window_capacity;
  return view;
}

store_ptr make_postgres_store();

}  // namespace sbm::speakers
