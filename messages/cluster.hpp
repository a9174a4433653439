#pragma once
// The cluster's contracts: who the members are (gossiped between membership actors over CAF's io
// middleman), what GET /v1/status shows of them, and the fencing number a node's speakers write
// with. Routing, hand-off and rebalancing will add their messages here.
#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"

namespace sbm {

// The cluster's own atoms live here rather than in atoms.hpp: only what takes part in the cluster
// includes them.
// a node asks a member to add it; the member answers the list and tells everyone
using join_atom = caf::atom_constant<caf::atom("join")>;
// the member list, pushed to every member whenever one learns something new
using members_atom = caf::atom_constant<caf::atom("members")>;
// the membership actor renews its lease and reads everyone's
using lease_atom = caf::atom_constant<caf::atom("lease")>;
// the membership actor (re)tries its publish and its seeds
using seed_atom = caf::atom_constant<caf::atom("seed")>;

// A member as the others know it: where its membership actor is published, its name, the epoch
// of its lease (a restarted node comes back with a higher one) and the actor itself.
struct cluster_member {
  std::string address;  // host:port of its membership actor (cluster.host, cluster.port)
  std::string name;     // node.name
  std::int64_t epoch = 0;
  caf::actor membership;  // a proxy on every other node
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_member& x) {
  return f(caf::meta::type_name("cluster_member"), x.address, x.name, x.epoch, x.membership);
}

// One member in a node's view. state: "up" (connected and leased), "unreachable" (BASP lost it,
// its lease still runs: it may be frozen or cut off), "joining" (this node, before its lease).
// A member whose lease lapsed is gone from the list: the lease is the last word.
struct cluster_member_status {
  std::string address;
  std::string name;
  std::int64_t epoch = 0;
  std::string state;
  bool self = false;
  std::int64_t lease_age_ms = -1;      // since its last renewal, by PostgreSQL's clock; -1 unknown
  std::int64_t lease_expires_in_ms = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_member_status& x) {
  return f(caf::meta::type_name("cluster_member_status"), x.address, x.name, x.epoch, x.state,
           x.self, x.lease_age_ms, x.lease_expires_in_ms);
}

// The `cluster` section of GET /v1/status.
struct cluster_status {
  bool enabled = false;
  std::string address;  // this node's membership address
  std::string state;    // "joining" (no lease yet), "member", "lease_lost"
  std::int64_t epoch = 0;
  std::int64_t lease_age_ms = -1;
  std::vector<cluster_member_status> members;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_status& x) {
  return f(caf::meta::type_name("cluster_status"), x.enabled, x.address, x.state, x.epoch,
           x.lease_age_ms, x.members);
}

using membership_actor = caf::typed_actor<
  // a joining node introduces itself; the answer is every member this one knows, itself included
  caf::replies_to<join_atom, cluster_member>::with<std::vector<cluster_member>>,
  caf::reacts_to<members_atom, std::vector<cluster_member>>,
  caf::replies_to<status_atom>::with<cluster_status>,
  // its own timers
  caf::reacts_to<lease_atom>,
  caf::reacts_to<seed_atom>>;

// The epoch this node's durable speaker writes carry (cluster.fence_speaker in the database
// refuses them once the lease is gone or the speaker belongs to another epoch). Written by the
// membership actor, read by speaker actors of the same process: a node's lease is by definition
// local to it, so it is shared in memory rather than asked for on every write. 0: no lease held.
class node_lease {
 public:
  std::int64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  void set(std::int64_t epoch) { epoch_.store(epoch, std::memory_order_release); }

 private:
  std::atomic<std::int64_t> epoch_{0};
};

}  // namespace sbm
