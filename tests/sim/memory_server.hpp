#pragma once
// The simulation's database server: an actor that holds nothing itself but applies the calls the
// in-memory stores send it (each a closure over the store's tables), one at a time, in virtual
// time, with programmable faults. Being an actor, it is reached the way PostgreSQL is reached
// (a request with the caller's timeout), so a lost answer turns into the same request_timeout.
//
// Simulation only: a call carries a closure, so it is a local message that is never serialised.
#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/make_message.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <random>

#include "messages/context.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::sim {

// What the next calls meet; the scenario changes it whenever it likes (it is shared).
struct faults {
  bool down = false;                     // refused before reaching the data (nothing applied)
  std::chrono::milliseconds latency{0};  // applied and answered this much later (virtual time)
  std::chrono::milliseconds jitter{0};   // plus up to this much more, drawn from the seed
  std::uint32_t fail_every = 0;          // every Nth call refused unapplied (0: never)
  std::uint32_t lose_every = 0;          // every Nth call applied, its answer lost (0: never)
  double fail_chance = 0;                // per call, drawn from the seed
  double lose_chance = 0;
};

struct server_stats {
  std::uint64_t calls = 0;
  std::uint64_t applied = 0;
  std::uint64_t refused = 0;  // down, failing or past the caller's deadline: not applied
  std::uint64_t lost = 0;     // applied, never answered
};

// One call: `apply` runs against the tables at the virtual instant the server applies it.
struct call {
  std::function<void(std::int64_t now_ms)> apply;
  deadline until;
};

struct server {
  caf::actor handle;
  std::shared_ptr<faults> faults_now;
  std::shared_ptr<server_stats> stats;
};

// `seed` drives the jitter and the chances.
server spawn_memory_server(caf::actor_system& sys, std::uint64_t seed = 1);

// Milliseconds since the clock's epoch: what the stores stamp rows with.
std::int64_t ms_of(caf::actor_clock::time_point t);

// One call of an in-memory store: `op(tables, now_ms)` runs on the server, at its virtual
// instant; its answer comes back through the caller's link (or the link's error: refused, lost,
// timed out).
template <class T, class Tables, class Op>
void call_server(const db::store_link& link, const caf::actor& server, std::shared_ptr<Tables> tables,
                 const deadline& until, db::completion<T> done, Op op);

// What db::idempotency::judge says of PostgreSQL's rows, over an in-memory store's keys (a map by
// (principal, key) to rows with `digest` and `created_ms`): the row when ctx's key holds an answer
// younger than `retention`, else null; `reused` when that row belongs to another request.
template <class Keys>
const typename Keys::mapped_type* find_key(const Keys& keys, const request_context& ctx,
                                           std::chrono::seconds retention, std::int64_t now,
                                           db::idempotency::verdict& v) {
  v = db::idempotency::verdict::absent;
  auto it = keys.find({ctx.principal, ctx.idempotency_key});
  if (it == keys.end() || it->second.created_ms <= now - retention.count() * 1000) return nullptr;
  v = it->second.digest == ctx.request_digest ? db::idempotency::verdict::replay : db::idempotency::verdict::reused;
  return &it->second;
}

// What db::idempotency::purge does to PostgreSQL's rows: forgets keys `retention` old or older.
template <class Keys>
void forget_keys(Keys& keys, std::chrono::seconds retention, std::int64_t now) {
  for (auto it = keys.begin(); it != keys.end();)
    it = it->second.created_ms <= now - retention.count() * 1000 ? keys.erase(it) : std::next(it);
}

}  // namespace sbm::sim

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sbm::sim::call)

template <class T, class Tables, class Op>
void sbm::sim::call_server(const db::store_link& link, const caf::actor& server, std::shared_ptr<Tables> tables,
                           const deadline& until, db::completion<T> done, Op op) {
  auto slot = std::make_shared<caf::expected<T>>(caf::error{});
  call c;
  c.until = until;
  c.apply = [tables, slot, op](std::int64_t now) mutable { *slot = op(*tables, now); };
  link.call(server, caf::make_message(std::move(c)), [slot, done](caf::expected<bool> answered) {
    if (!answered) return done(std::move(answered.error()));
    done(std::move(*slot));
  });
}
