// The verified-token cache: an entry lives until the token's exp, the table stays within its
// capacity, and a token is found only under its own bytes.
#include <gtest/gtest.h>

#include "gateway/token_cache.hpp"

using sbm::token_state;
using sbm::token_verdict;
using sbm::gateway::token_cache;

namespace {

token_verdict genuine(const std::string& subject) {
  token_verdict v;
  v.state = token_state::genuine;
  v.subject = subject;
  v.role = "qa";
  return v;
}

}  // namespace

TEST(TokenCache, RemembersAVerdictUntilTheTokenExpires) {
  token_cache cache{10};
  cache.remember("a.b.c", genuine("alice"), 1000);
  auto hit = cache.find("a.b.c", 999);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->subject, "alice");
  EXPECT_FALSE(cache.find("a.b.c", 1000)) << "a token is not served from the cache at its exp";
  EXPECT_EQ(cache.size(), 0u) << "the expired entry is dropped";
}

TEST(TokenCache, FindsATokenOnlyUnderItsOwnBytes) {
  token_cache cache{10};
  cache.remember("a.b.c", genuine("alice"), 1000);
  EXPECT_FALSE(cache.find("a.b.d", 1));
  EXPECT_FALSE(cache.find("a.b.c ", 1));
  EXPECT_FALSE(cache.find("", 1));
}

TEST(TokenCache, StaysWithinItsCapacityDroppingTheOldest) {
  token_cache cache{3};
  for (int i = 0; i < 10; ++i)
    cache.remember("token-" + std::to_string(i), genuine("u" + std::to_string(i)), 1000);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.find("token-0", 1));
  ASSERT_TRUE(cache.find("token-9", 1));
  EXPECT_EQ(cache.find("token-9", 1)->subject, "u9");
}

TEST(TokenCache, BookkeepingStaysBoundedWhenEntriesKeepExpiring) {
  token_cache cache{2};
  for (int i = 0; i < 1000; ++i) {
    auto token = "t" + std::to_string(i);
    cache.remember(token, genuine("u"), i + 1);
    EXPECT_FALSE(cache.find(token, i + 1));  // expires at once, erased by the lookup
  }
  EXPECT_LE(cache.size(), 2u);
}

TEST(TokenCache, CapacityZeroRemembersNothing) {
  token_cache cache{0};
  cache.remember("a.b.c", genuine("alice"), 1000);
  EXPECT_FALSE(cache.find("a.b.c", 1));
}
