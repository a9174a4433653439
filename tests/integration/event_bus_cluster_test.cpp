// The event bus across members, over CAF's io middleman (BASP on loopback, two actor systems as
// two nodes would be): an event published once on one member's bus reaches the listeners
// (non-durable subscribers) of every member exactly once, and the durable subscribers of the
// publishing member only, since their effects are made once per cluster there.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/events/events.hpp"
#include "messages/announce.hpp"
#include "tests/support/actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::bucket_changed;

struct node_config : caf::actor_system_config {
  node_config() {
    sbm::announce_types(*this);
    load<caf::io::middleman>();
  }
};

// Tells `observer` (tagged with `who`) of every event it gets; answers true when asked.
caf::behavior counting_subscriber(caf::event_based_actor* self, caf::actor observer, std::string who) {
  return {
    [=](sbm::publish_atom, const bucket_changed& ev) {
      self->send(observer, who, ev.event_id);
      return true;
    },
  };
}

class EventBusAcrossMembers : public ::testing::Test {
 protected:
  node_config cfg_a;
  node_config cfg_b;
  caf::actor_system a{cfg_a};
  caf::actor_system b{cfg_b};
  caf::scoped_actor self{a};
};

TEST_F(EventBusAcrossMembers, AnEventPublishedOnOneMemberReachesEveryMembersListenersOnce) {
  auto bus_a = sbm::events::spawn_event_bus(a, 2s, 1);
  auto bus_b = sbm::events::spawn_event_bus(b, 2s, 1);
  // Each bus as the other member sees it: a proxy over a real BASP connection.
  auto port_b = b.middleman().publish(bus_b, 0, "127.0.0.1", true);
  ASSERT_TRUE(port_b) << b.render(port_b.error());
  auto port_a = a.middleman().publish(bus_a, 0, "127.0.0.1", true);
  ASSERT_TRUE(port_a) << a.render(port_a.error());
  auto b_from_a = a.middleman().remote_actor<sbm::event_bus_actor>("127.0.0.1", *port_b);
  ASSERT_TRUE(b_from_a) << a.render(b_from_a.error());
  auto a_from_b = b.middleman().remote_actor<sbm::event_bus_actor>("127.0.0.1", *port_a);
  ASSERT_TRUE(a_from_b) << b.render(a_from_b.error());
  // As the membership actors tell them: each the other's bus.
  self->send(bus_a, sbm::peers_atom::value, std::vector<caf::actor>{caf::actor_cast<caf::actor>(*b_from_a)});
  caf::anon_send(bus_b, sbm::peers_atom::value, std::vector<caf::actor>{caf::actor_cast<caf::actor>(*a_from_b)});

  // An observer on each member: the only connections between the two are the buses' own (a third
  // one, for an observer published on A, sometimes lost an event when ctest ran tests beside it).
  caf::scoped_actor self_b{b};
  auto durable_a = a.spawn(counting_subscriber, caf::actor_cast<caf::actor>(self), std::string{"durable-a"});
  auto listener_a = a.spawn(counting_subscriber, caf::actor_cast<caf::actor>(self), std::string{"listener-a"});
  auto durable_b = b.spawn(counting_subscriber, caf::actor_cast<caf::actor>(self_b), std::string{"durable-b"});
  auto listener_b = b.spawn(counting_subscriber, caf::actor_cast<caf::actor>(self_b), std::string{"listener-b"});
  self->send(bus_a, sbm::subscribe_atom::value, durable_a, true);
  self->send(bus_a, sbm::subscribe_atom::value, listener_a, false);
  caf::anon_send(bus_b, sbm::subscribe_atom::value, durable_b, true);
  caf::anon_send(bus_b, sbm::subscribe_atom::value, listener_b, false);

  const bucket_changed ev{41, "spk-1", "clinic-1", "high_touch", "low_touch", "pinned", 1234};
  auto published = sbm::test::request_blocking<bool>(self, 10s, bus_a, sbm::publish_atom::value, ev);
  ASSERT_TRUE(published) << a.render(published.error());
  EXPECT_TRUE(*published);
  // A second event behind it: once it is seen everywhere, a repeat of the first would have been
  // seen already (each path keeps its order), so the counts below are final.
  const bucket_changed last{42, "spk-1", "clinic-1", "low_touch", "high_touch", "unpinned", 1235};
  ASSERT_TRUE(sbm::test::request_blocking<bool>(self, 10s, bus_a, sbm::publish_atom::value, last));

  std::map<std::string, std::vector<std::int64_t>> seen;
  auto all_of_last = [&] {
    return seen["durable-a"].size() == 2 && seen["listener-a"].size() == 2 && seen["listener-b"].size() == 2;
  };
  // Each observer in turn, briefly, until every count is in (or 10 s pass).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!all_of_last()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "an event never reached a subscriber";
    for (auto* observer : {&self, &self_b})
      (*observer)->receive([&](const std::string& who, std::int64_t id) { seen[who].push_back(id); },
                           caf::after(10ms) >> [] {});
  }
  // What durable-b would have been sent arrives on B's observer beside listener-b's.
  self_b->receive([&](const std::string& who, std::int64_t id) { seen[who].push_back(id); },
                  caf::after(100ms) >> [] {});
  EXPECT_EQ(seen["durable-a"], (std::vector<std::int64_t>{41, 42}));
  EXPECT_EQ(seen["listener-a"], (std::vector<std::int64_t>{41, 42}));  // not echoed back by B
  EXPECT_EQ(seen["listener-b"], (std::vector<std::int64_t>{41, 42}));  // once, in order
  EXPECT_TRUE(seen["durable-b"].empty());  // durable effects are the publishing member's

  for (auto& x : {durable_a, listener_a})
    caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  for (auto& x : {durable_b, listener_b})
    caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bus_a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bus_b, caf::exit_reason::user_shutdown);
}

TEST_F(EventBusAcrossMembers, APeerThatIsGoneHoldsNothingUp) {
  auto bus_a = sbm::events::spawn_event_bus(a, 2s, 0);
  auto bus_b = sbm::events::spawn_event_bus(b, 2s, 0);
  auto port_b = b.middleman().publish(bus_b, 0, "127.0.0.1", true);
  ASSERT_TRUE(port_b);
  auto b_from_a = a.middleman().remote_actor<sbm::event_bus_actor>("127.0.0.1", *port_b);
  ASSERT_TRUE(b_from_a);
  self->send(bus_a, sbm::peers_atom::value, std::vector<caf::actor>{caf::actor_cast<caf::actor>(*b_from_a)});
  caf::anon_send_exit(bus_b, caf::exit_reason::kill);
  auto listener = a.spawn(counting_subscriber, caf::actor_cast<caf::actor>(self), std::string{"listener-a"});
  self->send(bus_a, sbm::subscribe_atom::value, listener, false);
  const bucket_changed ev{43, "spk-2", "clinic-1", "high_touch", "low_touch", "pinned", 1236};
  auto published = sbm::test::request_blocking<bool>(self, 10s, bus_a, sbm::publish_atom::value, ev);
  ASSERT_TRUE(published) << a.render(published.error());
  EXPECT_TRUE(*published);
  self->receive([&](const std::string& who, std::int64_t id) {
                  EXPECT_EQ(who, "listener-a");
                  EXPECT_EQ(id, 43);
                },
                caf::after(10s) >> [] { ADD_FAILURE() << "the local listener never got the event"; });
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bus_a, caf::exit_reason::user_shutdown);
}

}  // namespace
