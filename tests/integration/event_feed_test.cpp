// The event feed (actors/events/event_feed.cpp) as the gateway's long poll uses it, on a real bus:
// reads after a cursor, each event once however often it is delivered, only the caller's
// clients, a waiting read answered by the next event or by its time running out, and both bounds:
// the events it keeps (older ones dropped, the reader told of the gap) and the reads waiting.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "actors/events/events.hpp"
#include "tests/support/actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::bucket_changed;
using sbm::errc;
using sbm::event_feed_page;
using sbm::event_feed_query;

bucket_changed change(std::int64_t id, std::string client = "clinic-1") {
  return {id, "spk-" + std::to_string(id), std::move(client), "high_touch", "low_touch", "pinned", 1000 + id};
}

std::vector<std::int64_t> ids(const event_feed_page& page) {
  std::vector<std::int64_t> out;
  for (const auto& e : page.events)
    out.push_back(e.event.event_id);
  return out;
}

using asked_atom = caf::atom_constant<caf::atom("asked")>;

// Reads from an actor of its own, so that several can wait at once: `to` gets `asked` once the
// read is in the feed's mailbox (so what `to` sends the feed afterwards comes after it), then the
// page, or false when the read failed.
void read_later(caf::actor_system& sys, sbm::event_feed_actor feed, event_feed_query q, caf::scoped_actor& to) {
  auto dest = caf::actor_cast<caf::actor>(to);
  sys.spawn([=](caf::event_based_actor* reader) {
    reader->request(feed, std::chrono::seconds{90}, sbm::list_atom::value, q)
      .then([=](event_feed_page& page) { reader->send(dest, page); },
            [=](caf::error&) { reader->send(dest, false); });
    reader->send(dest, asked_atom::value);
  });
  to->receive([](asked_atom) {}, caf::after(std::chrono::seconds{30}) >> [] { ADD_FAILURE() << "no read was made"; });
}

class EventFeed : public sbm::test::io_actor_test {
 protected:
  caf::expected<event_feed_page> read(const sbm::event_feed_actor& feed, event_feed_query q) {
    return ask<event_feed_page>(feed, sbm::list_atom::value, q);
  }
  // Published through the bus, as the relay does; true once the bus has passed it on.
  void publish(const sbm::event_bus_actor& bus, const bucket_changed& ev) {
    auto r = ask<bool>(bus, sbm::publish_atom::value, ev);
    ASSERT_TRUE(r && *r);
  }
  // The feed hears the bus's listeners' copy after the publish answered: wait for it.
  void heard(const sbm::event_feed_actor& feed, std::uint64_t seq) {
    ASSERT_TRUE(sbm::test::eventually([&] {
      auto page = read(feed, {});
      return page && page->next >= seq;
    }));
  }
};

TEST_F(EventFeed, ReadsAfterACursorEachEventOnceAndOnlyTheCallersClients) {
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s, 0));
  auto feed = stop_at_end(sbm::events::spawn_event_feed(sys, bus, 100, 10));
  publish(bus, change(11));
  publish(bus, change(12, "clinic-2"));
  publish(bus, change(11));  // delivered again (a relay that moved): kept once
  publish(bus, change(13));
  heard(feed, 3);
  auto all = read(feed, {});
  ASSERT_TRUE(all);
  EXPECT_EQ(ids(*all), (std::vector<std::int64_t>{11, 12, 13}));
  EXPECT_EQ(all->next, 3u);
  EXPECT_FALSE(all->gap);

  event_feed_query after_first;
  after_first.after = all->events[0].seq;
  after_first.limit = 1;
  auto one = read(feed, after_first);
  ASSERT_TRUE(one);
  EXPECT_EQ(ids(*one), (std::vector<std::int64_t>{12}));
  EXPECT_EQ(one->next, 2u);

  event_feed_query scoped;
  scoped.scope.limited = true;
  scoped.scope.client_ids = {"clinic-1"};
  auto mine = read(feed, scoped);
  ASSERT_TRUE(mine);
  EXPECT_EQ(ids(*mine), (std::vector<std::int64_t>{11, 13}));
  EXPECT_EQ(mine->next, 3u);  // past the other client's event too
}

TEST_F(EventFeed, AWaitingReadIsAnsweredByTheNextEventOrWhenItsTimeRunsOut) {
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s, 0));
  auto feed = stop_at_end(sbm::events::spawn_event_feed(sys, bus, 100, 1));
  event_feed_query q;
  q.wait_ms = 60000;
  read_later(sys, feed, q, self);
  // It waits: the feed's one place for a waiting read is taken, so the next event is its answer.
  auto second = read(feed, q);
  ASSERT_FALSE(second);
  EXPECT_EQ(sbm::code_of(second.error()), errc::overloaded);
  publish(bus, change(21));
  caf::optional<event_feed_page> answer;
  self->receive([&](event_feed_page& p) { answer = std::move(p); },
                [&](bool) { ADD_FAILURE() << "the waiting read failed"; },
                caf::after(30s) >> [] { ADD_FAILURE() << "the waiting read was never answered"; });
  ASSERT_TRUE(answer);
  EXPECT_EQ(ids(*answer), (std::vector<std::int64_t>{21}));
  EXPECT_EQ(answer->next, 1u);

  event_feed_query brief;
  brief.after = 1;
  brief.wait_ms = 50;
  auto nothing = read(feed, brief);
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->events.empty());
  EXPECT_EQ(nothing->next, 1u);
}

TEST_F(EventFeed, ItKeepsItsLastEventsAndSaysWhenAReaderMissedSome) {
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s, 0));
  auto feed = stop_at_end(sbm::events::spawn_event_feed(sys, bus, 2, 10));
  for (std::int64_t id = 31; id <= 34; ++id)
    publish(bus, change(id));
  heard(feed, 4);
  auto kept = read(feed, {});
  ASSERT_TRUE(kept);
  EXPECT_EQ(ids(*kept), (std::vector<std::int64_t>{33, 34}));
  EXPECT_TRUE(kept->gap);  // 31 and 32 are gone
  event_feed_query current;
  current.after = 3;
  auto rest = read(feed, current);
  ASSERT_TRUE(rest);
  EXPECT_EQ(ids(*rest), (std::vector<std::int64_t>{34}));
  EXPECT_FALSE(rest->gap);
  // A cursor from an earlier run of the feed (beyond anything it numbered): a gap, read from now.
  event_feed_query stale;
  stale.after = 999;
  auto restarted = read(feed, stale);
  ASSERT_TRUE(restarted);
  EXPECT_TRUE(restarted->gap);
  EXPECT_TRUE(restarted->events.empty());
  EXPECT_EQ(restarted->next, 4u);
}

TEST_F(EventFeed, PastItsBoundAReadDoesNotWaitButIsToldToComeBack) {
  auto bus = stop_at_end(sbm::events::spawn_event_bus(sys, 2s, 0));
  auto feed = stop_at_end(sbm::events::spawn_event_feed(sys, bus, 100, 2));
  event_feed_query q;
  q.wait_ms = 60000;
  for (int i = 0; i < 2; ++i)
    read_later(sys, feed, q, self);
  auto refused = read(feed, q);
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::overloaded) << sys.render(refused.error());
  EXPECT_TRUE(sbm::retry_after_of(refused.error()));
  // The two that wait are answered by the next event.
  publish(bus, change(41));
  for (int i = 0; i < 2; ++i)
    self->receive([&](event_feed_page& p) { EXPECT_EQ(ids(p), (std::vector<std::int64_t>{41})); },
                  [&](bool) { ADD_FAILURE() << "a waiting read failed"; },
                  caf::after(30s) >> [] { ADD_FAILURE() << "a waiting read was never answered"; });
}

}  // namespace
