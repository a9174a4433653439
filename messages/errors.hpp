#pragma once
// SBM's error codes travel inside caf::error (category "sbm") so a failure keeps its meaning across
// nodes; the gateway maps each to one HTTP status. What a caller acts on (when to retry, which
// statement of a transaction refused) travels typed in error_info, never inside the detail text.
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/meta/type_name.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sbm {

enum class errc : std::uint8_t {
  none = 0,
  invalid_argument,   // 400: the request is malformed or a field is wrong
  not_found,          // 404
  conflict,           // 409: a precondition failed (a version moved); re-read and retry
  unavailable,        // 503: a dependency is down or a circuit is open; nothing was written
  overloaded,         // 503 (429 for one client's excess): a bounded queue is full; nothing written
  poison_message,     // 422: the message made its handler fail repeatedly; not retried
  stale_owner,        // 409: a fenced write came from a node that no longer owns the entity
  internal,           // 500
  schema_too_new,     // the database was migrated by a newer SBM
  outcome_unknown,    // 503: the write may or may not have committed; retry with the same key
  duplicate,          // 409: the thing exists already (a speaker id, a job counted once)
  deadline_exceeded,  // 503: the work was dropped unstarted because its caller stopped waiting
  in_progress,        // 409: a request with this Idempotency-Key is still running
  key_reused,         // 422: this Idempotency-Key was used for a different request
  too_large,          // 413: the input is past a cap on the work it would cost
  // 503: the entity is between owners in a cluster (a join, a move, an owner whose lease is
  // lapsing, a node that lost its lease): nothing was done, so sending it again is safe.
  moving,
};

const char* to_string(errc code);

inline constexpr caf::atom_value error_category = caf::atom("sbm");

// The context of every SBM error.
struct error_info {
  std::string detail;               // for people: what went wrong, never secrets or patient data
  std::int64_t retry_after_ms = 0;  // > 0: when the refusing party expects to accept again
  std::int32_t statement = -1;      // >= 0: the statement of a transaction that refused
  // The request never reached the dependency (e.g. the connection was refused before any
  // statement ran): repeating it cannot do anything twice. Only such failures are retried.
  bool retry_safe = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, error_info& x) {
  return f(caf::meta::type_name("error_info"), x.detail, x.retry_after_ms, x.statement,
           x.retry_safe);
}

caf::error make_error(errc code, std::string detail = {});
caf::error make_error(errc code, std::string detail, std::chrono::milliseconds retry_after);
caf::error make_error(errc code, error_info info);

// The answer to work dropped unstarted because its deadline had passed.
caf::error deadline_passed();

// The code of an SBM error, or errc::internal for any foreign error (timeouts, CAF errors).
errc code_of(const caf::error& e);

// The human-readable detail an SBM error carries (empty for others).
std::string detail_of(const caf::error& e);

// The typed context of an SBM error (empty for others).
error_info info_of(const caf::error& e);

// When the refusing party expects to accept again, if it said.
std::optional<std::chrono::milliseconds> retry_after_of(const caf::error& e);

// Whether the failed work certainly never reached the dependency, so repeating it is safe.
bool retry_safe(const caf::error& e);

// Whether the failed work may have taken effect: a write that timed out or lost its answer.
bool outcome_unknown(const caf::error& e);

}  // namespace sbm
