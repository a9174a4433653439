#pragma once
// A simulated PostgreSQL connection worker (simulation only): what the connection supervisor
// spawns in place of its libpq workers (connections::postgres_settings::spawn_worker), so the real
// supervisor, pool, breaker, retries and queue bound run over a server whose faults the scenario
// programs (memory_server.hpp's faults: down, latency, every Nth call failing, chances). Like a
// libpq worker it does one request at a time, the rest wait in its mailbox; a query answers no
// rows (an InstaNote with no drafts: the breaker cares for outcomes, not contents). Work past its
// deadline is dropped unstarted, and a statement slower than what is left of its deadline (or
// `statement_timeout`) is cancelled then, as the libpq worker has the server cancel it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <functional>

#include "actors/connections/postgres_worker.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

struct worker_ledger {
  std::uint64_t started = 0;       // queries and transactions the workers began
  std::uint64_t failed = 0;        // refused by a fault
  std::uint64_t probes = 0;
  std::uint64_t max_waiting = 0;   // the most requests one worker held at once
  std::uint64_t outstanding = 0;   // queries and transactions held by all workers now (no probes)
  std::uint64_t max_outstanding = 0;
};

using worker_spawner = std::function<connections::detail::postgres_worker_actor(caf::local_actor*)>;

worker_spawner simulated_postgres_workers(std::shared_ptr<faults> f, std::shared_ptr<worker_ledger> ledger,
                                          std::chrono::milliseconds statement_timeout, std::uint64_t seed);

}  // namespace sbm::sim
