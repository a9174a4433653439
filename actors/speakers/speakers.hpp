#pragma once
// The speakers family from outside: one call spawns the shard, which owns the speaker actors and
// the outbox relay. Everything else reaches speakers through the returned handle.
#include <chrono>
#include <memory>

#include "actors/speakers/core/bucket_policy.hpp"
#include "actors/speakers/store.hpp"
#include "messages/connections.hpp"
#include "messages/events.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "runtime/resilience/restart_intensity.hpp"

namespace caf {
class actor_system;
}

namespace sbm {
class node_lease;       // messages/cluster.hpp
class published_views;  // messages/published_views.hpp
}

namespace sbm::speakers {

struct speakers_settings {
  postgres_actor db;
  // The durable state's port: PostgreSQL through `db` when null (simulation gives its own).
  store_ptr store;
  event_bus_actor bus;            // the relay's first target (internal subscribers)
  stream_publisher_actor stream;  // the relay's second target (Redis stream); may be null
  audit_actor audit;              // the relay's target for pin and unpin audit entries
  bucket_policy_config policy;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{5}};
  std::chrono::milliseconds relay_interval{500};
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // A speaker that dies more often than this is answered errc::poison_message for the cool-down
  // instead of being re-activated again and again.
  resilience::restart_limit speaker_restarts{3, std::chrono::seconds{60}};
  std::chrono::milliseconds poison_cooldown{std::chrono::minutes{1}};
  // Bounds on what waits: messages of one speaker (sent to it or buffered during a hand-off), and
  // of all speakers together. Past either, callers get errc::overloaded with a Retry-After.
  std::uint32_t max_queued_per_speaker = 64;
  std::uint32_t max_queued = 10000;
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
  // Quality measured from texts runs on detached measurers, so a maximal pair of texts never
  // holds up the shard or a scheduler thread; past max_measuring at once: errc::overloaded.
  std::uint32_t measurers = 2;
  std::uint32_t max_measuring = 8;
  // Simulation only: measurers scheduled, not detached. A detached actor runs on a thread of its
  // own even under the test coordinator, and its exit touched the coordinator's clock from there
  // (a segfault once in thousands of seeds of tests/sim's cluster scenario).
  bool detached_measurers = true;
  // In a cluster, the node's lease: every durable speaker write carries its epoch and is fenced
  // by the store (store.hpp). Null on a node without a cluster.
  std::shared_ptr<const node_lease> lease;
  // In a cluster: how long a message for a speaker whose owner BASP lost waits here (at most,
  // and never past its deadline) for the owner's lease to lapse and the speaker to move, before
  // it is answered errc::moving. About the lease's length plus one renewal.
  std::chrono::milliseconds owner_wait{std::chrono::seconds{4}};
  // The node's board of published views, which the gateway's HTTP threads answer reads from
  // (messages/published_views.hpp); null: speakers publish nothing.
  std::shared_ptr<published_views> views;
};

// Spawns the shard; the shard spawns and supervises the outbox relay (re-spawned when it fails,
// escalated as the shard's own failure past 5 restarts a minute) and takes it down when it stops.
// Throws std::invalid_argument when the policy is not usable (validate(policy)).
speaker_shard_actor spawn_speakers(caf::actor_system& sys, speakers_settings settings);

}  // namespace sbm::speakers
