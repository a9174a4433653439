// The cluster lease port's contract, run against both adapters: PostgreSQL and the simulation's
// in-memory store (tests/sim/). Epochs only increase, leases lapse by the store's own clock and
// are never revived, the fence refuses a writer whose epoch is stale, and a singleton has one
// live holder at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/cluster/store.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/leases_memory.hpp"
#include "tests/support/actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm::cluster;
using sbm::errc;

template <class Backend>
class LeaseStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    tables = std::make_shared<sbm::sim::lease_tables>();
  }

  template <class T, class Op>
  caf::expected<T> run(Op op) {
    std::function<std::unique_ptr<store>(const sbm::db::store_link&)> open = [](const sbm::db::store_link& link) {
      return make_postgres_store(link.query);
    };
    if constexpr (Backend::in_memory) open = sbm::sim::memory_lease_store(this->server.handle, tables);
    return sbm::test::through_port<T, store>(this->sys, this->handle(), open, op);
  }

  caf::expected<lease> acquire(std::string address, std::chrono::milliseconds ttl = 60s) {
    return run<lease>([address, ttl](store& st, completion<lease> done) { st.acquire(address, "node-" + address, ttl, done); });
  }
  caf::expected<lease> renew(std::int64_t epoch, std::chrono::milliseconds ttl = 60s) {
    return run<lease>([epoch, ttl](store& st, completion<lease> done) { st.renew(epoch, ttl, done); });
  }
  caf::expected<std::vector<lease>> live() {
    return run<std::vector<lease>>([](store& st, completion<std::vector<lease>> done) { st.live(done); });
  }
  caf::expected<bool> release(std::int64_t epoch) {
    return run<bool>([epoch](store& st, completion<bool> done) { st.release(epoch, done); });
  }
  caf::expected<bool> fence(std::string speaker, std::int64_t epoch) {
    return run<bool>([speaker, epoch](store& st, completion<bool> done) { st.fence_speaker(speaker, epoch, done); });
  }
  caf::expected<bool> hold(std::string name, std::int64_t epoch) {
    return run<bool>([name, epoch](store& st, completion<bool> done) { st.hold_singleton(name, epoch, done); });
  }
  caf::expected<bool> release_singletons(std::int64_t epoch) {
    return run<bool>([epoch](store& st, completion<bool> done) { st.release_singletons(epoch, done); });
  }
  bool is_live(std::int64_t epoch) {
    auto all = live();
    return all && std::any_of(all->begin(), all->end(), [epoch](const lease& l) { return l.epoch == epoch; });
  }
  static bool stale(const caf::expected<bool>& r) { return !r && sbm::code_of(r.error()) == errc::stale_owner; }

  std::shared_ptr<sbm::sim::lease_tables> tables;
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(LeaseStoreContract, backends);

TYPED_TEST(LeaseStoreContract, EachLeaseTakesAHigherEpochAndLiveListsThemByEpoch) {
  auto a = this->acquire("10.0.0.1:4000");
  auto b = this->acquire("10.0.0.2:4000");
  auto a2 = this->acquire("10.0.0.1:4000");  // the same node again (a restart): a new epoch
  ASSERT_TRUE(a && b && a2);
  EXPECT_LT(a->epoch, b->epoch);
  EXPECT_LT(b->epoch, a2->epoch);
  EXPECT_EQ(b->address, "10.0.0.2:4000");
  EXPECT_EQ(b->node_name, "node-10.0.0.2:4000");
  EXPECT_GT(b->expires_in_ms, 0);
  EXPECT_LE(b->expires_in_ms, 60000);
  auto all = this->live();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].epoch, a->epoch);
  EXPECT_EQ((*all)[2].epoch, a2->epoch);
}

TYPED_TEST(LeaseStoreContract, AReleasedLeaseIsGoneAndIsNeverRenewed) {
  auto a = this->acquire("10.0.0.1:4000", 5s);
  ASSERT_TRUE(a);
  auto renewed = this->renew(a->epoch, 60s);
  ASSERT_TRUE(renewed) << this->sys.render(renewed.error());
  EXPECT_GT(renewed->expires_in_ms, 5000);
  auto released = this->release(a->epoch);
  ASSERT_TRUE(released);
  EXPECT_TRUE(*released);
  auto twice = this->release(a->epoch);
  ASSERT_TRUE(twice);
  EXPECT_FALSE(*twice);
  EXPECT_FALSE(this->is_live(a->epoch));
  auto revived = this->renew(a->epoch);
  ASSERT_FALSE(revived);
  EXPECT_EQ(sbm::code_of(revived.error()), errc::stale_owner);
}

TYPED_TEST(LeaseStoreContract, ALeaseLapsesByTheStoresClockUnlessRenewed) {
  auto kept = this->acquire("10.0.0.1:4000", 60s);
  auto brief = this->acquire("10.0.0.2:4000", 200ms);
  ASSERT_TRUE(kept && brief);
  // Nobody expires it: the store's clock passing its expiry is enough.
  EXPECT_TRUE(sbm::test::eventually([&] { return !this->is_live(brief->epoch); }, 30s));
  EXPECT_TRUE(this->is_live(kept->epoch));
  auto late = this->renew(brief->epoch);
  ASSERT_FALSE(late);
  EXPECT_EQ(sbm::code_of(late.error()), errc::stale_owner);
  EXPECT_TRUE(this->stale(this->fence("spk-1", brief->epoch)));
}

TYPED_TEST(LeaseStoreContract, TheFenceRefusesAStaleEpochAndLetsALiveOneTakeOverALapsedOwner) {
  auto a = this->acquire("10.0.0.1:4000");
  auto b = this->acquire("10.0.0.2:4000");
  ASSERT_TRUE(a && b);
  auto claimed = this->fence("spk-1", a->epoch);
  ASSERT_TRUE(claimed) << this->sys.render(claimed.error());
  EXPECT_TRUE(this->fence("spk-1", a->epoch));          // its own again
  EXPECT_TRUE(this->stale(this->fence("spk-1", b->epoch)));  // a's, and a is live
  EXPECT_TRUE(this->fence("spk-2", b->epoch));
  EXPECT_TRUE(this->stale(this->fence("spk-3", b->epoch + 1000)));  // never issued

  // a stops: b may take spk-1 over, and a (a stale epoch now) may write it no more.
  ASSERT_TRUE(this->release(a->epoch));
  EXPECT_TRUE(this->stale(this->fence("spk-1", a->epoch)));
  EXPECT_TRUE(this->fence("spk-1", b->epoch));
  // a restarted node takes a new epoch, which still finds spk-1 b's while b lives.
  auto a2 = this->acquire("10.0.0.1:4000");
  ASSERT_TRUE(a2);
  EXPECT_TRUE(this->stale(this->fence("spk-1", a2->epoch)));
  EXPECT_TRUE(this->stale(this->fence("spk-1", a->epoch)));
}

TYPED_TEST(LeaseStoreContract, ASingletonHasOneLiveHolderAndMovesWhenItsLeaseEndsOrItIsGivenBack) {
  auto a = this->acquire("10.0.0.1:4000");
  auto b = this->acquire("10.0.0.2:4000");
  ASSERT_TRUE(a && b);
  auto first = this->hold("relay", a->epoch);
  ASSERT_TRUE(first) << this->sys.render(first.error());
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*this->hold("relay", a->epoch));    // its own again
  EXPECT_FALSE(*this->hold("relay", b->epoch));   // a's, and a is live
  EXPECT_TRUE(*this->hold("other", b->epoch));    // each name on its own
  EXPECT_TRUE(this->stale(this->hold("relay", b->epoch + 1000)));  // never issued

  // a drains: it gives its singletons back, and b takes them at its next ask while a still lives.
  auto given = this->release_singletons(a->epoch);
  ASSERT_TRUE(given);
  EXPECT_TRUE(*given);
  EXPECT_TRUE(*this->hold("relay", b->epoch));
  EXPECT_FALSE(*this->hold("relay", a->epoch));
  EXPECT_FALSE(*this->release_singletons(a->epoch));

  // b stops: its lease is gone, so a takes the singleton back, and b (stale now) holds nothing.
  ASSERT_TRUE(this->release(b->epoch));
  EXPECT_TRUE(this->stale(this->hold("relay", b->epoch)));
  EXPECT_TRUE(*this->hold("relay", a->epoch));
  EXPECT_TRUE(*this->hold("other", a->epoch));
}

}  // namespace
