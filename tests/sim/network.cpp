#include "tests/sim/network.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

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
  rewrite rw;
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
  if (st.rw) msg = st.rw(std::move(msg));
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

caf::behavior link_fn(link_ptr self, caf::actor target, network net, rewrite rw) {
  self->state.target = std::move(target);
  self->state.net = std::move(net);
  self->state.rw = std::move(rw);
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

caf::io::middleman_actor::behavior_type transport_fn(caf::io::middleman_actor::pointer,
                                                    std::shared_ptr<directory> dir,
                                                    std::function<caf::actor(const caf::actor&)> link_to) {
  auto refused = [] { return caf::make_error(caf::sec::invalid_argument, "not simulated"); };
  return {
    [dir](caf::publish_atom, std::uint16_t port, caf::strong_actor_ptr& whom, std::set<std::string>&,
          std::string& host, bool) -> caf::result<std::uint16_t> {
      dir->published[host + ":" + std::to_string(port)] = std::move(whom);
      return port;
    },
    [refused](caf::open_atom, std::uint16_t, std::string&, bool) -> caf::result<std::uint16_t> { return refused(); },
    [dir, link_to](caf::connect_atom, std::string& host,
                   std::uint16_t port) -> caf::result<caf::node_id, caf::strong_actor_ptr, std::set<std::string>> {
      auto it = dir->published.find(host + ":" + std::to_string(port));
      if (it == dir->published.end() || !it->second)
        return caf::make_error(caf::sec::cannot_connect_to_node, "nothing published at " + host);
      auto link = link_to(caf::actor_cast<caf::actor>(it->second));
      return {caf::node_id{}, caf::actor_cast<caf::strong_actor_ptr>(link), std::set<std::string>{}};
    },
    [dir](caf::unpublish_atom, const caf::actor_addr& whom, std::uint16_t port) {
      const auto suffix = ":" + std::to_string(port);
      for (auto it = dir->published.begin(); it != dir->published.end();) {
        const bool match = it->first.size() > suffix.size() &&
                           it->first.compare(it->first.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                           it->second && it->second->address() == whom;
        it = match ? dir->published.erase(it) : std::next(it);
      }
    },
    [](caf::close_atom, std::uint16_t) {},
    [refused](caf::spawn_atom, caf::node_id&, std::string&, caf::message&,
              std::set<std::string>&) -> caf::result<caf::strong_actor_ptr> { return refused(); },
    [refused](caf::get_atom, caf::node_id&) -> caf::result<caf::node_id, std::string, std::uint16_t> {
      return refused();
    },
  };
}

}  // namespace

network make_network(std::uint64_t seed) {
  return {std::make_shared<network_faults>(), std::make_shared<network_stats>(),
          std::make_shared<std::mt19937_64>(seed)};
}

caf::actor spawn_link(caf::actor_system& sys, caf::actor target, const network& net, rewrite rw) {
  return sys.spawn(link_fn, std::move(target), net, std::move(rw));
}

caf::io::middleman_actor spawn_transport(caf::actor_system& sys, std::shared_ptr<directory> dir,
                                         std::function<caf::actor(const caf::actor&)> link_to) {
  return sys.spawn(transport_fn, std::move(dir), std::move(link_to));
}

}  // namespace sbm::sim
