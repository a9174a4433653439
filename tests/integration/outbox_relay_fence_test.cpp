// The outbox relay's stamps are fenced by the relay singleton in a cluster: a relay whose member's
// epoch does not hold it (its lease lapsed while it was frozen, or another member took it) still
// delivers (at least once) but marks nothing as delivered; under the holder's epoch it stamps.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "actors/speakers/outbox_relay.hpp"
#include "messages/cluster.hpp"
#include "tests/support/postgres_actor_test.hpp"

namespace {

using namespace std::chrono_literals;

caf::behavior counting_bus(caf::event_based_actor*, std::shared_ptr<std::atomic<int>> published) {
  return {[published](sbm::publish_atom, const sbm::bucket_changed&) {
    ++*published;
    return true;
  }};
}

class OutboxRelayFence : public sbm::test::postgres_actor_test {
 protected:
  std::string delivered_at() {
    auto rows = sql("SELECT coalesce(delivered_at::text, 'none') FROM speakers.outbox");
    return rows.size() == 1 && rows[0][0] ? *rows[0][0] : "?";
  }
};

TEST_F(OutboxRelayFence, ARelayWhoseEpochDoesNotHoldTheSingletonStampsNothing) {
  sql("INSERT INTO cluster.leases (epoch, address, node_name, expires_at) VALUES "
      "(41, '127.0.0.1:1', 'holder', now() + interval '10 minutes'), "
      "(42, '127.0.0.1:2', 'other', now() + interval '10 minutes')");
  sql("INSERT INTO cluster.singletons (name, epoch) VALUES ($1, 41)", {std::string{sbm::outbox_relay_singleton}});
  sql("INSERT INTO speakers.outbox (topic, payload) VALUES ($1, $2::jsonb)",
      {std::string{sbm::bucket_changed_topic},
       std::string{R"({"speaker_id":"s1","client_id":"c","previous_bucket":"low_touch",)"
                   R"("new_bucket":"high_touch","reason":"r"})"}});

  auto lease = std::make_shared<sbm::node_lease>();
  lease->set(42);  // a live lease, but not the singleton's
  auto published = std::make_shared<std::atomic<int>>(0);
  auto bus = sys.spawn(counting_bus, published);
  sbm::speakers::outbox_relay_settings rs;
  rs.db = db;
  rs.bus = caf::actor_cast<sbm::event_bus_actor>(bus);
  rs.interval = 100ms;
  rs.backoff = {0, 50ms, 200ms, 0.2};
  rs.lease = lease;
  auto relay = stop_at_end(sbm::speakers::spawn_outbox_relay(sys, std::move(rs)));

  // Delivered, refused at the stamp, delivered again after the back-off: never marked.
  ASSERT_TRUE(sbm::test::eventually([&] { return published->load() >= 3; }, 20s));
  EXPECT_EQ(delivered_at(), "none");

  // Under the holder's epoch the next stamp goes through.
  lease->set(41);
  ASSERT_TRUE(sbm::test::eventually([&] { return delivered_at() != "none"; }, 20s));
  caf::anon_send_exit(bus, caf::exit_reason::kill);
}

}  // namespace
