#pragma once
// The verification family from outside (so far: the schedule of speakers QA should verify next).
#include <chrono>

#include "actors/verification/store.hpp"
#include "messages/connections.hpp"
#include "messages/events.hpp"
#include "messages/verification.hpp"

namespace caf {
class actor_system;
}

namespace sbm::verification {

// Spawns the scheduler and subscribes it to `bus` as a durable subscriber before returning, so
// any event published after this call reaches it.
verification_scheduler_actor spawn_verification_scheduler(
  caf::actor_system& sys, postgres_actor db, event_bus_actor bus,
  std::chrono::milliseconds db_timeout = std::chrono::seconds{10}, store_factory make_store = {});

}  // namespace sbm::verification
