// The InstaNote cache port's contract, run against both adapters: real Redis (the shared server of
// ./scripts/test) and the simulation's in-memory cache (tests/sim/). A missing key is nothing
// cached, not an error; a value comes back byte for byte; a store replaces; an entry ends with
// its ttl; and the in-memory one refuses while its server is down, as Redis does unreachable.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "actors/connections/connections.hpp"
#include "actors/instanote/job_cache.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/cache_memory.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::instanote::cache;
using value = std::optional<std::string>;

class redis_backend : public sbm::test::io_actor_test {
 protected:
  static constexpr bool in_memory = false;
  void SetUp() override {
    sbm::connections::redis_settings s;
    const auto& servers = sbm::test::servers::shared();
    s.host = servers.redis_host();
    s.port = static_cast<std::uint16_t>(servers.redis_port());
    s.request_timeout = 5s;
    redis = stop_at_end(sbm::connections::spawn_redis(sys, std::move(s)));
  }
  std::function<std::unique_ptr<cache>(caf::event_based_actor*)> opener() {
    return [redis = redis](caf::event_based_actor* self) {
      return sbm::instanote::make_redis_cache([self, redis](sbm::redis_command c, sbm::db::completion<sbm::redis_reply> done) {
        self->request(redis, 5s, sbm::command_atom::value, std::move(c))
          .then([done](sbm::redis_reply& r) { done(std::move(r)); }, [done](caf::error& e) { done(std::move(e)); });
      });
    };
  }
  sbm::redis_actor redis;
};

class memory_backend : public sbm::test::memory_backend {
 protected:
  std::function<std::unique_ptr<cache>(caf::event_based_actor*)> opener() {
    auto make = sbm::sim::memory_cache(server.handle, std::make_shared<sbm::sim::cache_tables>());
    return [make](caf::event_based_actor* self) { return make(sbm::db::make_store_link(self, {}, 10s)); };
  }
};

template <class Backend>
class CacheContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    open = this->opener();
  }
  // Keys of this process only: the shared Redis serves tests running in parallel.
  static std::string key(const std::string& name) { return "sbmtest:cache:" + std::to_string(::getpid()) + ":" + name; }

  caf::expected<value> get(const std::string& k) {
    return sbm::test::through_actor_port<value, cache>(
      this->sys, open, [k](cache& c, sbm::db::completion<value> done) { c.get(k, done); });
  }
  caf::expected<bool> put(const std::string& k, std::string v, std::chrono::seconds ttl = 60s) {
    return sbm::test::through_actor_port<bool, cache>(
      this->sys, open, [k, v, ttl](cache& c, sbm::db::completion<bool> done) { c.put(k, v, ttl, done); });
  }

  std::function<std::unique_ptr<cache>(caf::event_based_actor*)> open;
};

using backends = ::testing::Types<redis_backend, memory_backend>;
TYPED_TEST_SUITE(CacheContract, backends);

TYPED_TEST(CacheContract, AMissingKeyIsNothingCachedNotAnError) {
  auto got = this->get(this->key("missing"));
  ASSERT_TRUE(got) << caf::to_string(got.error());
  EXPECT_FALSE(got->has_value());
}

TYPED_TEST(CacheContract, AValueComesBackByteForByteAndAStoreReplacesIt) {
  const std::string v{"gAAAA\0token\r\n\xff", 14};
  auto stored = this->put(this->key("v"), v);
  ASSERT_TRUE(stored) << caf::to_string(stored.error());
  EXPECT_TRUE(*stored);
  auto got = this->get(this->key("v"));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ(**got, v);
  ASSERT_TRUE(this->put(this->key("v"), "second"));
  got = this->get(this->key("v"));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ(**got, "second");
}

TYPED_TEST(CacheContract, AnEntryEndsWithItsTtl) {
  ASSERT_TRUE(this->put(this->key("short"), "soon gone", 1s));
  auto first = this->get(this->key("short"));
  ASSERT_TRUE(first && first->has_value()) << "read back at once";
  EXPECT_TRUE(sbm::test::eventually(
    [&] {
      auto got = this->get(this->key("short"));
      return got && !got->has_value();
    },
    10s));
}

class CacheMemory : public sbm::test::memory_backend {};

TEST_F(CacheMemory, RefusesWhileItsServerIsDownAndStoresNothing) {
  auto tables = std::make_shared<sbm::sim::cache_tables>();
  auto make = sbm::sim::memory_cache(server.handle, tables);
  std::function<std::unique_ptr<cache>(caf::event_based_actor*)> open = [make](caf::event_based_actor* self) {
    return make(sbm::db::make_store_link(self, {}, 10s));
  };
  auto put = [&] {
    return sbm::test::through_actor_port<bool, cache>(
      sys, open, [](cache& c, sbm::db::completion<bool> done) { c.put("k", "v", 60s, done); });
  };
  server.faults_now->down = true;
  EXPECT_FALSE(put());
  EXPECT_TRUE(tables->entries.empty());
  server.faults_now->down = false;
  auto stored = put();
  EXPECT_TRUE(stored && *stored);
  EXPECT_EQ(tables->entries.count("k"), 1u);
}

}  // namespace
