#pragma once
// One actor per active speaker. It loads its row from PostgreSQL when spawned (messages wait in its
// mailbox meanwhile), serves reads from memory, and makes every change durable in one transaction
// before it changes memory or answers. Only the shard spawns it; callers reach it by speaker_id.
#include <caf/intrusive_ptr.hpp>
#include <caf/ref_counted.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/speakers/core/bucket_policy.hpp"
#include "messages/connections.hpp"
#include "actors/speakers/store.hpp"
#include "messages/speakers.hpp"

namespace caf {
class actor_system;
}

namespace sbm {
class node_lease;       // messages/cluster.hpp
class published_views;  // messages/published_views.hpp
}

namespace sbm::speakers {

// Random per call: what makes the stamps of this node's activations unlike those of another node's.
std::uint64_t random_stamp_base();

// Shared by every speaker of a shard and never changed after the shard started, so speakers on
// different threads read it without locks and each one stays small: a speaker holds it by one
// counted pointer (8 bytes; a shared_ptr is 16), which keeps it alive while the speaker outlives
// its shard by the time its exit message takes.
struct speaker_env : caf::ref_counted {
  store_ptr store;   // shared by every speaker; each call takes the speaker's own link to db
  postgres_actor db;
  speaker_shard_actor shard;  // told (idle_atom) when the speaker has been idle or is unusable
  bucket_policy_config policy;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{5}};
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
  std::shared_ptr<const node_lease> lease;  // null: no cluster, writes are not fenced
  std::uint64_t stamp_base = random_stamp_base();  // plus the actor's id: a speaker_stamp's activation
  // The node's board of published views (null: none): each activation publishes its view there
  // after every committed change and before answering it, and withdraws it when it stops serving.
  std::shared_ptr<published_views> views;
};

using speaker_env_ptr = caf::intrusive_ptr<const speaker_env>;

speaker_actor spawn_speaker(caf::actor_system& sys, speaker_env_ptr env, std::string speaker_id);

}  // namespace sbm::speakers
