#include "actors/events/event_bus.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <memory>
#include <vector>

#include "messages/errors.hpp"

namespace sbm::events {

namespace {

struct subscriber {
  caf::actor handle;
  bool durable = false;
};

struct bus_state {
  static inline const char* name = "sbm.event_bus";
  std::vector<subscriber> subscribers;
  std::vector<caf::actor> peers;  // the other members' buses (proxies over BASP)
  std::chrono::milliseconds ack_timeout{10000};
  std::size_t durable_expected = 0;
};

using self_ptr = event_bus_actor::stateful_pointer<bus_state>;

// Collects the durable subscribers' answers for one publish.
struct ack_round {
  std::size_t outstanding = 0;
  bool all_true = true;
  caf::error first_error;
};

void settle(const std::shared_ptr<ack_round>& round, caf::typed_response_promise<bool>& rp) {
  if (--round->outstanding > 0) return;
  if (round->first_error)
    rp.deliver(round->first_error);
  else
    rp.deliver(round->all_true);
}

// Fire-and-forget, so they never hold up the publisher; only the event's first bus relays it on,
// so it reaches each member once.
void tell_listeners(self_ptr self, const bucket_changed& ev) {
  for (const subscriber& s : self->state.subscribers)
    if (!s.durable)
      caf::anon_send(s.handle, publish_atom::value, ev);  // no sender: no answer comes back
}

caf::result<bool> publish(self_ptr self, const bucket_changed& ev) {
  auto& st = self->state;
  const auto durable = static_cast<std::size_t>(
    std::count_if(st.subscribers.begin(), st.subscribers.end(),
                  [](const subscriber& s) { return s.durable; }));
  if (durable < st.durable_expected)
    return make_error(errc::unavailable,
                      "event bus: " + std::to_string(st.durable_expected - durable) +
                        " durable subscriber(s) not registered (restarting?); not delivered",
                      std::chrono::seconds{1});
  auto round = std::make_shared<ack_round>();
  tell_listeners(self, ev);
  for (const auto& peer : st.peers)
    caf::anon_send(caf::actor_cast<event_bus_actor>(peer), relayed_atom::value, ev);
  for (const subscriber& s : st.subscribers)
    if (s.durable)
      ++round->outstanding;
  if (round->outstanding == 0) return true;
  auto rp = self->make_response_promise<bool>();
  for (const subscriber& s : st.subscribers) {
    if (!s.durable) continue;
    self->request(s.handle, st.ack_timeout, publish_atom::value, ev)
      .then(
        [round, rp](bool ok) mutable {
          round->all_true = round->all_true && ok;
          settle(round, rp);
        },
        [self, round, rp](caf::error& e) mutable {
          round->all_true = false;
          if (!round->first_error)
            round->first_error =
              e.category() == error_category
                ? e
                : make_error(errc::unavailable,
                             "a durable subscriber did not acknowledge: " + self->system().render(e));
          settle(round, rp);
        });
  }
  return rp;
}

event_bus_actor::behavior_type bus_fn(self_ptr self, std::chrono::milliseconds ack_timeout,
                                      std::size_t durable_expected) {
  self->state.ack_timeout = ack_timeout;
  self->state.durable_expected = durable_expected;
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const subscriber& s) { return s.handle.address() == dm.source; }),
               subs.end());
  });
  return {
    [self](publish_atom, const bucket_changed& ev) { return publish(self, ev); },
    [self](subscribe_atom, caf::actor& who, bool durable) {
      if (!who) return;
      auto& subs = self->state.subscribers;
      auto known = std::find_if(subs.begin(), subs.end(),
                                [&](const subscriber& s) { return s.handle == who; });
      if (known != subs.end()) {
        known->durable = durable;  // subscribing again changes the kind, never duplicates
        return;
      }
      self->monitor(who);
      subs.push_back({std::move(who), durable});
    },
    // A peer that is gone drops what it is sent (BASP has no route): the membership actor's next
    // list leaves it out.
    [self](peers_atom, std::vector<caf::actor>& peers) { self->state.peers = std::move(peers); },
    // Durable effects were made on the publishing member; here only listeners hear of it.
    [self](relayed_atom, const bucket_changed& ev) { tell_listeners(self, ev); },
  };
}

}  // namespace

event_bus_actor spawn_event_bus(caf::actor_system& sys, std::chrono::milliseconds ack_timeout,
                                std::size_t durable_expected) {
  return sys.spawn(bus_fn, ack_timeout, durable_expected);
}

}  // namespace sbm::events
