#pragma once
// The cluster's contracts: who the members are (gossiped between membership actors over CAF's io
// middleman), what GET /v1/status shows of them, and the fencing number a node's speakers write
// with, and where each speaker lives (the placement a membership actor gives its node's shard).
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
// the member list as owners of speakers, from the membership actor to its node's shard
using placement_atom = caf::atom_constant<caf::atom("placement")>;
// an operator moves every speaker away from this node before it leaves
using drain_atom = caf::atom_constant<caf::atom("drain")>;
// a clean stop: the node gives its lease back so its speakers move at once
using leave_atom = caf::atom_constant<caf::atom("leave")>;
// the first word between two members: which version of these messages each speaks
using hello_atom = caf::atom_constant<caf::atom("hello")>;
// a timer of its own: the membership actor reads the leases again when a lost member's should
// have lapsed; a shard looks again at the messages it holds for a lost member's speakers
using recheck_atom = caf::atom_constant<caf::atom("recheck")>;

// The version of the messages members exchange (this file, messages/speakers.hpp and every other
// type that crosses BASP). `current` grows when a message crossing nodes changes form; `oldest` is
// the oldest form this build still reads, so during a rolling upgrade the old and the new build
// can run side by side. Told first at every join (hello_atom), in a message of atoms and integers
// only, which keeps its form across versions: a member of an incompatible version is refused
// there with a clear log line, before a message it could not read is sent.
struct messages_version {
  std::uint32_t current = 0;
  std::uint32_t oldest = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, messages_version& x) {
  return f(caf::meta::type_name("messages_version"), x.current, x.oldest);
}

// This build's. Bump `current` (and `oldest`, when the old form is no longer read) with any change
// to a message that crosses nodes.
inline constexpr messages_version build_messages_version{2, 2};  // 2: members name their pattern index

// Each side reads what the other sends.
inline bool compatible(const messages_version& a, const messages_version& b) {
  return a.current >= b.oldest && b.current >= a.oldest;
}

// A member as the others know it: where its membership actor is published, its name, the epoch
// of its lease (a restarted node comes back with a higher one), the actor itself, its speaker
// shard (where requests for the speakers it owns are routed) and its event bus (where events
// relayed on another member reach this member's subscribers) and its pattern index (which holds
// the patterns of the speakers it owns: messages/patterns.hpp). A draining member owns nothing;
// once said of an epoch it stays said (gossip from a member that has not heard yet cannot undo it).
struct cluster_member {
  std::string address;  // host:port of its membership actor (cluster.host, cluster.port)
  std::string name;     // node.name
  std::int64_t epoch = 0;
  caf::actor membership;  // a proxy on every other node
  caf::actor speakers;    // its speaker_shard_actor (messages/speakers.hpp), a proxy likewise
  bool draining = false;
  caf::actor events;      // its event_bus_actor (messages/events.hpp), a proxy likewise
  caf::actor patterns;    // its own pattern_index_actor (not a router), a proxy likewise
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_member& x) {
  return f(caf::meta::type_name("cluster_member"), x.address, x.name, x.epoch, x.membership,
           x.speakers, x.draining, x.events, x.patterns);
}

// One possible owner of speakers in a node's view: every member with a lease that is not draining.
struct placement_member {
  std::string address;  // the name rendezvous hashing scores (runtime/domain/placement)
  std::int64_t epoch = 0;
  caf::actor speakers;  // null for this node itself
  bool reachable = true;  // false: BASP lost it but its lease runs; its speakers wait for the lease
  caf::actor patterns;  // its pattern index (the patterns of the speakers it owns); null for this node
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, placement_member& x) {
  return f(caf::meta::type_name("placement_member"), x.address, x.epoch, x.speakers, x.reachable,
           x.patterns);
}

// Work that runs once per cluster: held by one live member (cluster.singletons, fenced by its
// epoch) and started on that member only.
inline constexpr const char* outbox_relay_singleton = "speakers.outbox-relay";

// What the membership actor tells its node's shard whenever the owners change. `ready` is false
// while the node holds no lease: then it owns nothing, routes nothing and holds no singleton.
struct cluster_placement {
  bool ready = false;
  std::string self;  // this node's address, one of `members` unless it drains
  std::vector<placement_member> members;  // sorted by address
  std::vector<std::string> singletons;    // the once-per-cluster work this node holds, sorted
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_placement& x) {
  return f(caf::meta::type_name("cluster_placement"), x.ready, x.self, x.members, x.singletons);
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
  bool draining = false;
  // Speakers whose ownership row holds its epoch (those it activated and has not passivated), as
  // of the last lease reading; -1 unknown.
  std::int64_t speakers = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_member_status& x) {
  return f(caf::meta::type_name("cluster_member_status"), x.address, x.name, x.epoch, x.state,
           x.self, x.lease_age_ms, x.lease_expires_in_ms, x.draining, x.speakers);
}

// The `cluster` section of GET /v1/status.
struct cluster_status {
  bool enabled = false;
  std::string address;  // this node's membership address
  std::string state;    // "joining" (no lease yet), "member", "lease_lost", "refused" (a member could
                        // not talk with this node's version of the messages: it stays out)
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
  // before a join: the asker's version and address; the answer is this member's version, or
  // errc::conflict when the two cannot read each other
  caf::replies_to<hello_atom, messages_version, std::string>::with<messages_version>,
  // a joining node introduces itself; the answer is every member this one knows, itself included
  caf::replies_to<join_atom, cluster_member>::with<std::vector<cluster_member>>,
  caf::reacts_to<members_atom, std::vector<cluster_member>>,
  caf::replies_to<status_atom>::with<cluster_status>,
  // an operator's drain: this node stops owning speakers; the answer is its status after that
  caf::replies_to<drain_atom>::with<cluster_status>,
  // a clean stop gives the lease back; true when a live lease was released
  caf::replies_to<leave_atom>::with<bool>,
  // its own timers
  caf::reacts_to<lease_atom>,
  caf::reacts_to<seed_atom>,
  caf::reacts_to<recheck_atom>>;

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
