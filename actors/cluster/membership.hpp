#pragma once
// The membership actor: this node's place in the cluster.
//  - It publishes itself on cluster.host:cluster.port with CAF's io middleman (BASP) and joins
//    through any reachable seed (join gossip: the joining node tells the seed, the seed tells
//    every member, each member monitors each).
//  - It holds this node's lease in PostgreSQL (store.hpp): a new epoch at start, renewed every
//    renew_interval, judged by the database's clock. The epoch is the fencing number of every
//    durable speaker write (node_lease, messages/cluster.hpp).
//  - A member BASP loses is "unreachable"; it leaves the list only when its lease lapses (the
//    lease is the last word). Live leases of nodes it does not know yet are joined too, so the
//    database also serves as a seed list (a restarted seed finds its old members again).
//  - It tells its node's speaker shard (and pattern index) who owns speakers (cluster_placement) whenever that
//    changes: every leased member that is not draining, once this node has its lease.
//  - A drain (an operator's) makes this node own nothing and tells the others; a leave (a clean
//    stop) gives the lease back, so the others take its speakers at once.
#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/cluster/store.hpp"
#include "messages/cluster.hpp"
#include "messages/connections.hpp"
#include "messages/events.hpp"
#include "messages/patterns.hpp"
#include "messages/speakers.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::cluster {

struct membership_settings {
  postgres_actor db;
  std::string node_name;
  std::string host = "127.0.0.1";  // bound and told to the others
  std::uint16_t port = 0;
  std::vector<std::pair<std::string, std::uint16_t>> seeds;  // may include this node itself
  std::chrono::milliseconds lease_ttl{3000};
  std::chrono::milliseconds renew_interval{1000};
  // A connect, a join or a lease statement that takes longer is given up and retried.
  std::chrono::milliseconds call_timeout{2000};
  std::shared_ptr<node_lease> lease;  // set to the held epoch, 0 while none is held
  speaker_shard_actor speakers;  // this node's shard: told the placement, and told to the others
  event_bus_actor events;        // this node's bus: told the others' buses, and told to the others
  // This node's pattern index, told to the others (they search and write the patterns of the
  // speakers this node owns through it); and who is told the placement besides the shard (the
  // index and the router in front of it). Null: the patterns stay node-local.
  pattern_index_actor patterns;
  std::vector<pattern_placement_actor> pattern_listeners;
  std::vector<std::string> singletons;  // the once-per-cluster work this node may run
  // Publish and connect through CAF's openssl manager (loaded and configured by the caller), so
  // only a member with a certificate of the cluster's CA gets in; otherwise plain BASP.
  bool tls = false;
  // Told at every join (hello_atom); a member that cannot read this node's messages, or whose
  // messages this node cannot read, is refused. Only tests speak another than the build's.
  messages_version version = build_messages_version;
  // Simulation only (tests/sim), empty in production: a stand-in for the middleman's actor (its
  // publish, connect and unpublish), so a simulated network carries what BASP would, and the
  // lease store to use in place of PostgreSQL's through `db`.
  caf::io::middleman_actor transport;
  std::function<std::unique_ptr<store>(const db::store_link&)> make_store;
};

membership_actor spawn_membership(caf::actor_system& sys, membership_settings settings);

}  // namespace sbm::cluster
