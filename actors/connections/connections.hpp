#pragma once
// The front doors to PostgreSQL (main and InstaNote) and Redis. Each is a supervisor that
// implements the typed interface from messages/connections.hpp over a pool of detached workers
// doing the blocking I/O; it owns the circuit breaker, the health probe, worker restarts and (for
// the main database) schema migrations. Callers never see the workers.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/connections/postgres_worker.hpp"
#include "messages/connections.hpp"
#include "runtime/migrations/migrations.hpp"
#include "runtime/resilience/backoff.hpp"
#include "runtime/resilience/circuit_breaker.hpp"
#include "runtime/resilience/restart_intensity.hpp"

namespace sbm::connections {

struct postgres_settings {
  std::string name = "postgres";  // in status, logs and error details
  std::string url;                // libpq URI or key=value string
  bool required = true;           // does readiness depend on it?
  bool read_only = false;         // every transaction read-only (InstaNote)
  std::uint32_t pool_size = 4;
  resilience::breaker_policy breaker{5, std::chrono::seconds{60}};
  resilience::backoff_policy restart_backoff{};
  // Repeats of requests refused before they reached the server; none unless set (see pool.hpp).
  resilience::backoff_policy retry{0, std::chrono::seconds{1}, std::chrono::seconds{60}, 0.5};
  std::uint64_t random_seed = 0;  // jitter of restarts and retries; 0 = from std::random_device
  resilience::restart_limit restart_limit{};
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds request_timeout{10000};  // also the server-side statement_timeout
  std::chrono::milliseconds connect_timeout{5000};
  std::uint32_t max_queued = 256;  // requests held by the workers at once; past it: overloaded
  std::string max_queued_setting = "postgres.max-queued";  // for metrics; empty: not configurable
  // Applied when the first probe succeeds; requests wait (unavailable) until then. A database
  // that is newer than these, or whose applied history differs, sends {fatal_atom, reason} to
  // on_fatal and the dependency stays down.
  std::vector<migrations::migration> migrations;
  caf::actor on_fatal;
  // Simulation only (tests/sim/): spawns each worker in place of a libpq one, so the supervisor,
  // its pool, breaker, retries and bound run unchanged over a simulated server. None: libpq.
  std::function<detail::postgres_worker_actor(caf::local_actor* parent)> spawn_worker;
};

struct redis_settings {
  std::string name = "redis";
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  bool required = false;  // SBM works without its cache
  std::uint32_t pool_size = 2;
  resilience::breaker_policy breaker{5, std::chrono::seconds{60}};
  resilience::backoff_policy restart_backoff{};
  // Repeats of requests refused before they reached the server; none unless set (see pool.hpp).
  resilience::backoff_policy retry{0, std::chrono::seconds{1}, std::chrono::seconds{60}, 0.5};
  std::uint64_t random_seed = 0;  // jitter of restarts and retries; 0 = from std::random_device
  resilience::restart_limit restart_limit{};
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};  // socket read/write timeout per command
  std::uint32_t max_queued = 256;
};

// The InstaNote source: the same supervisor, read-only, optional, a more patient breaker, no migrations.
postgres_settings instanote_defaults(std::string url);

// Spawns a supervisor. The overloads taking a parent link it to that actor: the supervisor dies
// with its parent, and the parent learns when the supervisor escalates (workers keep dying faster
// than restart_limit allows: it quits with an errc::internal error).
postgres_actor spawn_postgres(caf::actor_system& system, postgres_settings settings);
postgres_actor spawn_postgres(caf::local_actor* parent, postgres_settings settings);
redis_actor spawn_redis(caf::actor_system& system, redis_settings settings);
redis_actor spawn_redis(caf::local_actor* parent, redis_settings settings);

// While a breaker is open, requests fail at once with errc::unavailable whose error_info carries
// retry_after_ms (read it with sbm::retry_after_of), and a detail for people.

}  // namespace sbm::connections
