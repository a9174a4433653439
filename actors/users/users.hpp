#pragma once
// The users family from outside: the users actor (registered users and their standing) and the
// audit actor (the append-only log). Both keep their data behind the family's port (store.hpp; PostgreSQL schema `users`).
#include <chrono>
#include <cstddef>

#include "actors/users/store.hpp"
#include "messages/connections.hpp"
#include "messages/users.hpp"

namespace caf {
class actor_system;
}

namespace sbm::users {

struct users_settings {
  postgres_actor db;
  store_factory make_store;  // none: PostgreSQL through `db` (simulations set an in-memory store)
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
};

users_actor spawn_users(caf::actor_system& sys, users_settings settings);

struct audit_settings {
  postgres_actor db;
  store_factory make_store;  // none: PostgreSQL through `db`
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // Refused requests are written once per window, coalesced (see core/refusal_coalescer.hpp):
  // at most max_refusal_rows + 1 rows per window, whatever the attack. A window that cannot be
  // written (database down) is logged and dropped, never queued without bound.
  std::chrono::milliseconds refusal_window{std::chrono::seconds{1}};
  std::size_t max_refusal_rows = 64;
};

// Throws std::invalid_argument when max_refusal_rows is 0 or the window is not positive.
audit_actor spawn_audit(caf::actor_system& sys, audit_settings settings);

}  // namespace sbm::users
