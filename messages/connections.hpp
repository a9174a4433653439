#pragma once
// Contracts of the external-connection actors (PostgreSQL main, InstaNote, Redis). Statements carry
// their parameters separately: no value a client sends is ever spliced into SQL text.
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/metrics.hpp"

namespace sbm {

struct db_statement {
  std::string sql;                                 // constant text from code, $1..$n placeholders
  std::vector<caf::optional<std::string>> params;  // none = SQL NULL
  // When >= 0 the statement must affect exactly this many rows or the whole transaction is rolled
  // back with errc::conflict: this is how fenced and optimistic writes refuse stale writers.
  std::int32_t expect_rows = -1;
  // Sent alone (query_atom): the worker drops it unstarted once this passes, and the server's
  // statement_timeout is at most what is left. Inside a transaction the transaction's counts.
  deadline until;
  // Sent alone (query_atom), a statement that writes nothing needs no BEGIN/COMMIT: one round trip
  // instead of three. Only for reads: a write sent so could not be retried on a connection that
  // broke under it (it may have committed), while a read can.
  bool read_only = false;
  // Sent alone (query_atom), a write that is its own transaction: one round trip instead of three.
  // Its deadline decides only whether it starts (the connection's statement_timeout bounds it once
  // sent). A connection that breaks under it answers errc::outcome_unknown and is never retried:
  // only for writes whose callers settle an unknown outcome (Idempotency-Key, report filings).
  bool autocommit = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_statement& x) {
  return f(caf::meta::type_name("db_statement"), x.sql, x.params, x.expect_rows, x.until, x.read_only,
           x.autocommit);
}

struct db_transaction {
  std::vector<db_statement> statements;
  deadline until;  // as db_statement::until, for the whole transaction
  // Commits without waiting for the WAL flush (runtime/db/commit.hpp says when that is safe).
  bool unflushed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_transaction& x) {
  return f(caf::meta::type_name("db_transaction"), x.statements, x.until, x.unflushed);
}

using db_row = std::vector<caf::optional<std::string>>;

struct db_rows {
  std::vector<db_row> rows;
  std::uint64_t affected = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_rows& x) {
  return f(caf::meta::type_name("db_rows"), x.rows, x.affected);
}

struct db_results {
  std::vector<db_rows> results;  // one per statement of the transaction
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_results& x) {
  return f(caf::meta::type_name("db_results"), x.results);
}

// A dependency's circuit breaker, for the operator's GET /v1/status (never /readyz).
struct breaker_status {
  std::string state = "closed";   // "closed", "open", "half_open"
  std::string window = "count";   // "count" (last window_size calls) or "time" (last window_size s)
  std::int32_t window_size = 0;
  std::int32_t minimum_calls = 0;
  std::int32_t calls = 0;         // outcomes in the window (trial outcomes while half_open)
  std::int32_t failures = 0;
  std::int32_t slow_calls = 0;
  double failure_rate = 0;        // percent of calls
  double slow_call_rate = 0;
  double failure_rate_threshold = 0;
  double slow_call_rate_threshold = 0;
  std::int64_t slow_call_ms = 0;  // a call taking this long counts as slow
  std::int32_t trial_calls = 0;   // admitted in half_open
  std::int32_t trials_in_flight = 0;
  std::int64_t open_for_ms = 0;
  std::int64_t retry_in_ms = 0;   // open: until the next call is a trial at the latest
  std::uint64_t refused = 0;      // calls refused since start
  std::uint64_t retries = 0;      // calls repeated after a safe-to-retry failure since start
  std::uint64_t transitions = 0;
  std::string last_from;          // the last transition, empty when there was none
  std::string last_to;
  std::int64_t last_transition_ms_ago = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, breaker_status& x) {
  return f(caf::meta::type_name("breaker_status"), x.state, x.window, x.window_size,
           x.minimum_calls, x.calls, x.failures, x.slow_calls, x.failure_rate, x.slow_call_rate,
           x.failure_rate_threshold, x.slow_call_rate_threshold, x.slow_call_ms, x.trial_calls,
           x.trials_in_flight, x.open_for_ms, x.retry_in_ms, x.refused, x.retries, x.transitions,
           x.last_from, x.last_to, x.last_transition_ms_ago);
}

// How a dependency is doing, for /readyz and logs.
struct dependency_status {
  std::string name;     // "postgres", "redis", "instanote"
  bool required = true; // a required dependency that is not up makes the node unready
  bool up = false;
  std::string state;    // "up", "down", "connecting", "migrating", "circuit_open"
  std::string detail;   // last error, never secrets
  bool has_breaker = false;  // answered by a connection supervisor (not e.g. a timeout stand-in)
  breaker_status breaker;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dependency_status& x) {
  return f(caf::meta::type_name("dependency_status"), x.name, x.required, x.up, x.state, x.detail,
           x.has_breaker, x.breaker);
}

using postgres_actor = caf::typed_actor<
  caf::replies_to<query_atom, db_statement>::with<db_rows>,
  caf::replies_to<transact_atom, db_transaction>::with<db_results>,
  caf::replies_to<status_atom>::with<dependency_status>,
  // its pool, breaker and queue (messages/metrics.hpp)
  caf::replies_to<metrics_atom>::with<component_metrics>>;

// A Redis command in argv form (each argument binary-safe; never a formatted command string).
struct redis_command {
  std::vector<std::string> argv;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, redis_command& x) {
  return f(caf::meta::type_name("redis_command"), x.argv);
}

struct redis_reply {
  enum kind_t : std::uint8_t { nil = 0, string = 1, integer = 2, array = 3, status = 4 };
  std::uint8_t kind = nil;
  std::string text;                  // string or status
  std::int64_t integer_value = 0;
  std::vector<std::string> elements; // array replies, nested arrays flattened depth-first
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, redis_reply& x) {
  return f(caf::meta::type_name("redis_reply"), x.kind, x.text, x.integer_value, x.elements);
}

using redis_actor = caf::typed_actor<
  caf::replies_to<command_atom, redis_command>::with<redis_reply>,
  caf::replies_to<status_atom>::with<dependency_status>,
  caf::replies_to<metrics_atom>::with<component_metrics>>;

}  // namespace sbm
