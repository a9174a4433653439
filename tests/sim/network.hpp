#pragma once
// The simulation's network between simulated nodes (simulation only): where the cluster sends to
// another node's actor over BASP, a scenario hands out a link instead, one per direction, which
// carries each message on to the real actor behind it unless the seed loses it (the caller's
// request timeout, then its retry, has to cover that) or holds it back for a while (so messages
// of one direction may overtake each other, as on separate connections). Replies go straight
// back to the caller, as BASP routes them.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/message.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

namespace sbm::sim {

// What the next messages meet; the scenario changes it whenever it likes (it is shared).
struct network_faults {
  double lose_chance = 0;   // per message
  double delay_chance = 0;  // per message that is not lost
  std::chrono::milliseconds max_delay{0};
};

struct network_stats {
  std::uint64_t carried = 0;  // passed on, at once or later
  std::uint64_t lost = 0;
  std::uint64_t delayed = 0;
};

struct network {
  std::shared_ptr<network_faults> faults;
  std::shared_ptr<network_stats> stats;
  std::shared_ptr<std::mt19937_64> rng;  // one draw sequence for every link, from the seed
};

network make_network(std::uint64_t seed);

// What BASP does to a message on its way: the handles in it become proxies on the receiving node.
// A scenario that hands actors from node to node in messages swaps them for links here.
using rewrite = std::function<caf::message(caf::message)>;

// A one-way link to `target`: what is sent to it goes on to `target` as if sent there directly
// (after `rw`, if any).
caf::actor spawn_link(caf::actor_system& sys, caf::actor target, const network& net, rewrite rw = {});

// The middleman's part of BASP for simulated nodes: where each node publishes an actor on a
// host:port, and where the others connect to it. A node's actor is gone from it when the scenario
// erases it (a crash) or the actor unpublishes itself.
struct directory {
  std::map<std::string, caf::strong_actor_ptr> published;  // by "host:port"
};

// One node's stand-in for its middleman actor (publish, connect, unpublish; the rest is refused):
// a connect answers `link_to(actor published there)`, the scenario's link from this node to it,
// which the caller monitors as it would a BASP proxy (killing the link is the connection lost).
caf::io::middleman_actor spawn_transport(caf::actor_system& sys, std::shared_ptr<directory> dir,
                                         std::function<caf::actor(const caf::actor&)> link_to);

}  // namespace sbm::sim
