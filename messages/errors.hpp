#pragma once
// SBM's error codes travel inside caf::error (category "sbm") so a failure keeps its meaning across
// nodes; the gateway maps each to one HTTP status.
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <cstdint>
#include <string>

namespace sbm {

enum class errc : std::uint8_t {
  none = 0,
  invalid_argument,   // 400: the request is malformed or a field is wrong
  not_found,          // 404
  conflict,           // 409: duplicate or precondition failed
  unavailable,        // 503: a dependency is down or a circuit is open; retry later
  overloaded,         // 429/503: a bounded queue is full
  poison_message,     // 422: the message made its handler fail repeatedly; not retried
  stale_owner,        // 409: a fenced write came from a node that no longer owns the entity
  internal,           // 500
  schema_too_new,     // the database was migrated by a newer SBM
};

const char* to_string(errc code);

inline constexpr caf::atom_value error_category = caf::atom("sbm");

caf::error make_error(errc code, std::string detail = {});

// The code of an SBM error, or errc::internal for any foreign error (timeouts, CAF errors).
errc code_of(const caf::error& e);

// The human-readable detail an SBM error carries (empty for others).
std::string detail_of(const caf::error& e);

}  // namespace sbm
