#pragma once
// What travels with every piece of client work, whichever actor or node does it: when the caller
// stops waiting (the deadline, timed once at the gateway) and how a retry of the same write is
// recognised (the Idempotency-Key, scoped to the principal, with a digest of the request).
#include <caf/actor_clock.hpp>
#include <caf/deserializer.hpp>
#include <caf/duration.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/serializer.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace sbm {

// A point on the actor clock (steady, and virtual under the test coordinator) in nanoseconds;
// 0 means "no deadline". It is meaningful on the node that set it only: on the wire (BASP, see
// inspect below) it travels as the time it has left, and the receiver sets it again on its own
// clock, so every message that carries one to another node keeps its meaning there.
struct deadline {
  std::int64_t at_ns = 0;

  // What travels: zero for no deadline, else what is left of it, never zero (a passed deadline is
  // sent as a negative rest, so it stays passed on arrival rather than becoming "none").
  std::chrono::nanoseconds remaining(caf::actor_clock::time_point now) const {
    if (!set())
      return std::chrono::nanoseconds::zero();
    const auto rest = std::chrono::nanoseconds{at_ns} - now.time_since_epoch();
    return rest == std::chrono::nanoseconds::zero() ? std::chrono::nanoseconds{-1} : rest;
  }
  static deadline rebuilt(caf::actor_clock::time_point now, std::chrono::nanoseconds rest) {
    if (rest == std::chrono::nanoseconds::zero())
      return {};
    const auto at =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch() + rest).count();
    return {at == 0 ? 1 : at};
  }

  static deadline after(caf::actor_clock::time_point now, std::chrono::nanoseconds budget) {
    return {std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch() + budget)
              .count()};
  }
  bool set() const { return at_ns != 0; }
  bool passed(caf::actor_clock::time_point now) const {
    return set() && now.time_since_epoch() >= std::chrono::nanoseconds{at_ns};
  }
  // What is left of the budget (zero once passed); `fallback` when no deadline is set.
  std::chrono::milliseconds left(caf::actor_clock::time_point now,
                                 std::chrono::milliseconds fallback) const {
    if (!set())
      return fallback;
    auto rest = std::chrono::nanoseconds{at_ns} - now.time_since_epoch();
    if (rest <= std::chrono::nanoseconds::zero())
      return std::chrono::milliseconds::zero();
    return std::chrono::duration_cast<std::chrono::milliseconds>(rest);
  }
};

// The CAF request timeout of a hop inside the node: work with a deadline is timed once, at the
// gateway, and every actor it passes answers by then (the connection pool keeps the one safety
// net, for a worker stuck on a dead peer); work without one keeps `fallback`.
inline caf::duration hop_timeout(const deadline& until, std::chrono::milliseconds fallback) {
  if (until.set())
    return caf::duration{caf::infinite};
  return caf::duration{fallback};
}

// The request timeout of a call for work with a deadline: what is left of it, plus `travel` when
// the caller needs the callee's own answer even if it comes at the deadline (a write's typed
// outcome, say), never under 1 ms; work without a deadline gives up after `fallback`.
inline std::chrono::milliseconds answer_timeout(caf::actor_clock::time_point now, const deadline& until,
                                                std::chrono::milliseconds fallback,
                                                std::chrono::milliseconds travel = {}) {
  if (!until.set())
    return fallback;
  return std::max(std::chrono::milliseconds{1}, until.left(now, fallback) + travel);
}

namespace detail {

// The clock of the actor system that (de)serialises, so a test coordinator's virtual time works
// as the real one; a processor without one (never BASP's) reads the production clock directly.
caf::actor_clock::time_point wire_clock(caf::execution_unit* unit);

}  // namespace detail

// A deadline is (de)serialised only when a message leaves its node (BASP), so the wire form is
// the remaining duration, taken at sending and added to the receiver's clock at arrival (the
// time on the wire is not counted: no clock measures it). Inspectors that only look (to_string)
// show the local time point.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deadline& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector> ||
                std::is_base_of_v<caf::deserializer, Inspector>) {
    std::chrono::nanoseconds rest{0};
    return f(caf::meta::type_name("deadline"), caf::meta::save_callback([&]() -> caf::error {
               rest = x.remaining(detail::wire_clock(f.context()));
               return caf::none;
             }),
             rest, caf::meta::load_callback([&]() -> caf::error {
               x = deadline::rebuilt(detail::wire_clock(f.context()), rest);
               return caf::none;
             }));
  } else {
    return f(caf::meta::type_name("deadline"), x.at_ns);
  }
}

// Which clients' data a principal may reach: a hospital's own reviewers are limited to their
// client_ids, the vendor's staff are not. It travels typed with every piece of client work and in
// every family's query structs, so a family filters by it in its own SQL (a bound text[]
// parameter, runtime/db scope_param) and never trusts a filter the client chose.
struct client_scope {
  bool limited = false;                 // false: every client (today's reach)
  std::vector<std::string> client_ids{};  // sorted, unique; meaningful only when limited

  bool admits(const std::string& client_id) const {
    if (!limited)
      return true;
    for (const auto& c : client_ids)
      if (c == client_id)
        return true;
    return false;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_scope& x) {
  return f(caf::meta::type_name("client_scope"), x.limited, x.client_ids);
}

struct request_context {
  sbm::deadline until;          // work still queued when it passes is dropped unstarted
  std::string idempotency_key;  // empty: the client did not send one
  std::string request_digest;   // hex SHA-256 of method, path, query and body (with a key only)
  std::string principal;        // the key's owner: keys of two principals never meet
  std::string request_id;       // for logs and problem bodies
  client_scope scope{};           // the principal's clients: work outside them is "not found"

  bool keyed() const { return !idempotency_key.empty(); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_context& x) {
  return f(caf::meta::type_name("request_context"), x.until, x.idempotency_key,
           x.request_digest, x.principal, x.request_id, x.scope);
}

}  // namespace sbm
