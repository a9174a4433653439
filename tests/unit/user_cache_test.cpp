#include "gateway/user_cache.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using sbm::gateway::user_standing_cache;
using sbm::gateway::user_standing_entry;

namespace {
const user_standing_cache::time_point t0 = user_standing_cache::time_point{} + 100s;
}

TEST(UserStandingCache, RemembersForTheTtlOnly) {
  user_standing_cache cache{5s, 10};
  EXPECT_FALSE(cache.find("alice", t0));
  cache.remember("alice", {true, true, "qa"}, t0);
  auto hit = cache.find("alice", t0 + 4999ms);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->known);
  EXPECT_TRUE(hit->disabled);
  EXPECT_EQ(hit->role, "qa");
  EXPECT_FALSE(cache.find("alice", t0 + 5s));
}

TEST(UserStandingCache, ForgetMakesTheNextLookupMiss) {
  user_standing_cache cache{5s, 10};
  cache.remember("alice", {true, false, "admin"}, t0);
  cache.forget("alice");
  EXPECT_FALSE(cache.find("alice", t0));
  cache.forget("nobody");  // harmless
}

TEST(UserStandingCache, ZeroTtlCachesNothing) {
  user_standing_cache cache{0ms, 10};
  cache.remember("alice", {true, true, "qa"}, t0);
  EXPECT_FALSE(cache.find("alice", t0));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(UserStandingCache, StaysWithinCapacityPreferringToDropExpiredEntries) {
  user_standing_cache cache{5s, 3};
  cache.remember("old1", {}, t0);
  cache.remember("old2", {}, t0);
  cache.remember("fresh", {true, false, "qa"}, t0 + 4s);
  cache.remember("new", {true, false, "qa"}, t0 + 6s);  // old1 and old2 have expired
  EXPECT_LE(cache.size(), 3u);
  EXPECT_TRUE(cache.find("fresh", t0 + 6s));
  EXPECT_TRUE(cache.find("new", t0 + 6s));
  for (int i = 0; i < 100; ++i) {
    cache.remember("u" + std::to_string(i), {}, t0 + 6s);
    ASSERT_LE(cache.size(), 3u);
  }
}

TEST(UserStandingCache, UpdatingAnEntryDoesNotEvict) {
  user_standing_cache cache{5s, 2};
  cache.remember("a", {true, false, "qa"}, t0);
  cache.remember("b", {true, false, "qa"}, t0);
  cache.remember("a", {true, true, "qa"}, t0 + 1s);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.find("a", t0 + 1s)->disabled);
  EXPECT_TRUE(cache.find("b", t0 + 1s));
}

TEST(UserStandingCache, RejectsUnusableSettings) {
  EXPECT_THROW(user_standing_cache(-1ms, 10), std::invalid_argument);
  EXPECT_THROW(user_standing_cache(1s, 0), std::invalid_argument);
}
