#include "tests/sim/network.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <utility>
#include <vector>

namespace sbm::sim {

namespace {

using carry_atom = caf::atom_constant<caf::atom("simcarry")>;

struct link_state {
  static inline const char* name = "sbm.sim.link";
  caf::actor target;
  network net;
  std::uint64_t next = 0;
  std::map<std::uint64_t, std::pair<caf::response_promise, caf::message>> held;
  // Lost messages keep their promise, so nothing at all goes back for them.
  std::vector<caf::response_promise> lost;
};

using link_ptr = caf::stateful_actor<link_state>*;

bool chance(link_ptr self, double p) {
  return p > 0 && std::uniform_real_distribution<double>{0, 1}(*self->state.net.rng) < p;
}

caf::result<caf::message> carry(caf::scheduled_actor* base, caf::message_view& x) {
  auto self = static_cast<link_ptr>(base);
  auto& st = self->state;
  const auto& f = *st.net.faults;
  auto msg = x.move_content_to_message();
  auto rp = self->make_response_promise();
  caf::result<caf::message> out{caf::delegated<caf::message>{}};
  if (chance(self, f.lose_chance)) {
    ++st.net.stats->lost;
    st.lost.push_back(std::move(rp));
    return out;
  }
  ++st.net.stats->carried;
  if (f.max_delay.count() > 0 && chance(self, f.delay_chance)) {
    ++st.net.stats->delayed;
    const auto delay = std::chrono::milliseconds{
      std::uniform_int_distribution<std::int64_t>{1, f.max_delay.count()}(*st.net.rng)};
    const auto id = st.next++;
    st.held.emplace(id, std::make_pair(std::move(rp), std::move(msg)));
    self->delayed_send(self, delay, carry_atom::value, id);
    return out;
  }
  rp.delegate(st.target, std::move(msg));
  return out;
}

caf::behavior link_fn(link_ptr self, caf::actor target, network net) {
  self->state.target = std::move(target);
  self->state.net = std::move(net);
  self->set_default_handler(carry);
  return {
    [self](carry_atom, std::uint64_t id) {
      auto it = self->state.held.find(id);
      if (it == self->state.held.end()) return;
      auto entry = std::move(it->second);
      self->state.held.erase(it);
      entry.first.delegate(self->state.target, std::move(entry.second));
    },
  };
}

}  // namespace

network make_network(std::uint64_t seed) {
  return {std::make_shared<network_faults>(), std::make_shared<network_stats>(),
          std::make_shared<std::mt19937_64>(seed)};
}

caf::actor spawn_link(caf::actor_system& sys, caf::actor target, const network& net) {
  return sys.spawn(link_fn, std::move(target), net);
}

}  // namespace sbm::sim
