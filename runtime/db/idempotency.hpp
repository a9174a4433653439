#pragma once
// Idempotency keys (the IETF httpapi draft, as Stripe's API uses them), one mechanism for every
// family. Each family that takes writes keeps a table `<schema>.idempotency_keys` of the same shape
// (its own migration) and writes the key, the request's digest and its answer in the same
// transaction as the write itself, so a stored answer exists exactly when the write committed.
// A retry then finds the answer and writes nothing; the same key with another request is refused.
// Refusals that a retry would meet again (a duplicate, an unknown speaker) may be stored too, in a
// transaction of their own: no write happened, so there is nothing to be atomic with.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "messages/connections.hpp"
#include "messages/context.hpp"

namespace caf {
class error;
}

namespace sbm::db::idempotency {

// What a key remembers: outcome 0 and the family's encoding of its answer, or the errc of a
// refusal and its detail.
struct stored_answer {
  std::uint8_t outcome = 0;
  std::string answer;
};

enum class verdict { absent, replay, reused };

struct lookup_result {
  verdict v = verdict::absent;
  stored_answer stored;
};

// The stored answer of ctx's key, if it is younger than `retention`.
db_statement lookup(const char* table, const request_context& ctx, std::chrono::seconds retention);

// Reads lookup()'s rows: absent, the answer to replay, or reused (another request under the key).
// Throws std::runtime_error on a corrupt row.
lookup_result judge(const db_rows& rows, const request_context& ctx);

// Records ctx's key with its answer: `answer_sql` is SQL from code (an expression, optionally
// followed by FROM/WHERE over the rows the same transaction just wrote), whose parameters start
// at $5 and are given in `params`. Affects exactly one row, so a key stored meanwhile by a
// concurrent request rolls the whole write back as errc::conflict at this statement.
db_statement store(const char* table, const request_context& ctx, std::uint8_t outcome,
                   const std::string& answer_sql, std::vector<caf::optional<std::string>> params);

// store() with a literal answer.
db_statement store_text(const char* table, const request_context& ctx, std::uint8_t outcome,
                        std::string answer);

// Removes keys older than `retention`.
db_statement purge(const char* table, std::chrono::seconds retention);

// A family that stores its answer as a row (json_build_array over its column list, as text) reads
// it back with this, into the text forms its row reader expects. Throws std::runtime_error.
db_row row_of_answer(const std::string& answer);

// The keys of the writes an actor is handling now, so that a retry arriving meanwhile is told to
// come back (in_progress) instead of running the write a second time.
class keys_in_flight {
 public:
  // Takes ctx's key into `held`; the refusal when it is taken already. Work without a key passes
  // and holds nothing.
  std::optional<caf::error> claim(const request_context& ctx, std::string& held);
  void release(const std::string& held);
  std::size_t size() const { return keys_.size(); }

 private:
  std::unordered_set<std::string> keys_;
};

// The answer to a key used for a different request.
caf::error reused(const request_context& ctx);

// The answer to a key whose first request is still running.
caf::error in_progress(const request_context& ctx);

// A stored refusal, as the error it was.
caf::error refusal_of(const stored_answer& stored);

}  // namespace sbm::db::idempotency
