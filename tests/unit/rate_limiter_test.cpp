#include "gateway/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using sbm::gateway::rate_decision;
using sbm::gateway::rate_limit_settings;
using sbm::gateway::rate_limiter;

namespace {

const rate_limiter::time_point t0 = rate_limiter::time_point{} + 1000s;

int allowed_in_a_row(rate_limiter& limiter, const std::string& client, rate_limiter::time_point at) {
  int n = 0;
  while (limiter.take(client, at).allowed && n < 10000)
    ++n;
  return n;
}

}  // namespace

TEST(RateLimiter, OffAllowsEverythingAndKeepsNoState) {
  rate_limiter limiter;
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i)
    EXPECT_TRUE(limiter.take("peer:10.0.0.1", t0).allowed);
  EXPECT_EQ(limiter.clients(), 0u);
}

TEST(RateLimiter, NewClientGetsExactlyTheBurstThenIsRefused) {
  rate_limiter limiter{{10, 5, 100}};
  EXPECT_EQ(allowed_in_a_row(limiter, "user:alice", t0), 5);
  auto refused = limiter.take("user:alice", t0);
  EXPECT_FALSE(refused.allowed);
}

TEST(RateLimiter, RetryAfterIsTheTimeUntilOneTokenIsBack) {
  rate_limiter limiter{{2, 1, 100}};  // one token every 500 ms
  EXPECT_TRUE(limiter.take("c", t0).allowed);
  auto d = limiter.take("c", t0 + 100ms);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 400ms);
  EXPECT_EQ(d.retry_after_seconds(), 1);
  // waiting exactly that long is enough
  EXPECT_TRUE(limiter.take("c", t0 + 500ms).allowed);
}

TEST(RateLimiter, RetryAfterSecondsRoundsUp) {
  rate_limiter limiter{{0.25, 1, 100}};  // one token every 4 s
  EXPECT_TRUE(limiter.take("c", t0).allowed);
  auto d = limiter.take("c", t0 + 500ms);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 3500ms);
  EXPECT_EQ(d.retry_after_seconds(), 4);
  EXPECT_EQ((rate_decision{false, 1ms}.retry_after_seconds()), 1);
}

TEST(RateLimiter, RefillsAtTheRateAndNeverBeyondTheBurst) {
  rate_limiter limiter{{10, 3, 100}};
  EXPECT_EQ(allowed_in_a_row(limiter, "c", t0), 3);
  // 200 ms at 10/s brings back 2 tokens
  EXPECT_EQ(allowed_in_a_row(limiter, "c", t0 + 200ms), 2);
  // an hour of silence refills to the burst, not to 36000
  EXPECT_EQ(allowed_in_a_row(limiter, "c", t0 + 1h), 3);
}

TEST(RateLimiter, SustainedRateMatchesTheConfiguredRate) {
  rate_limiter limiter{{20, 1, 100}};
  int allowed = 0;
  // a client hammering every millisecond for 10 s gets about rate * 10 + burst through
  for (int ms = 0; ms < 10000; ++ms)
    allowed += limiter.take("busy", t0 + std::chrono::milliseconds(ms)).allowed ? 1 : 0;
  EXPECT_GE(allowed, 199);
  EXPECT_LE(allowed, 201);
}

TEST(RateLimiter, ClientsHaveSeparateBuckets) {
  rate_limiter limiter{{1, 2, 100}};
  EXPECT_EQ(allowed_in_a_row(limiter, "peer:10.0.0.1", t0), 2);
  EXPECT_FALSE(limiter.take("peer:10.0.0.1", t0).allowed);
  EXPECT_TRUE(limiter.take("peer:10.0.0.2", t0).allowed);
  EXPECT_TRUE(limiter.take("user:10.0.0.1", t0).allowed);
}

TEST(RateLimiter, TimeGoingBackwardsGivesNoTokens) {
  rate_limiter limiter{{1, 1, 100}};
  EXPECT_TRUE(limiter.take("c", t0).allowed);
  EXPECT_FALSE(limiter.take("c", t0 - 10s).allowed);
  EXPECT_FALSE(limiter.take("c", t0 + 500ms).allowed);
  EXPECT_TRUE(limiter.take("c", t0 + 1s).allowed);
}

TEST(RateLimiter, TableNeverExceedsMaxClients) {
  rate_limiter limiter{{1, 5, 50}};
  for (int i = 0; i < 10000; ++i) {
    limiter.take("peer:" + std::to_string(i), t0);
    ASSERT_LE(limiter.clients(), 50u);
  }
  EXPECT_EQ(limiter.clients(), 50u);
}

TEST(RateLimiter, WhenFullTheLeastRecentlyUsedClientIsDropped) {
  rate_limiter limiter{{1, 2, 3}};
  for (const char* c : {"a", "b", "c"})
    EXPECT_EQ(allowed_in_a_row(limiter, c, t0), 2);
  // "a" is used again (refused) so "b" becomes the least recent; a new client evicts "b"
  EXPECT_FALSE(limiter.take("a", t0).allowed);
  EXPECT_TRUE(limiter.take("d", t0).allowed);
  EXPECT_EQ(limiter.clients(), 3u);
  EXPECT_FALSE(limiter.take("a", t0).allowed);  // still remembered, still empty
  EXPECT_FALSE(limiter.take("c", t0).allowed);  // still remembered
  EXPECT_TRUE(limiter.take("b", t0).allowed);   // forgotten: starts afresh
}

TEST(RateLimiter, IdleClientsAreForgottenWithoutChangingDecisions) {
  rate_limiter limiter{{10, 2, 1000}};  // full again 200 ms after the last take
  for (int i = 0; i < 100; ++i)
    limiter.take("peer:" + std::to_string(i), t0);
  EXPECT_EQ(limiter.clients(), 100u);
  // an active client keeps coming back; each of its takes drops a couple of idle buckets
  for (int i = 0; i < 60; ++i)
    limiter.take("active", t0 + 1s + std::chrono::milliseconds(i * 100));
  EXPECT_EQ(limiter.clients(), 1u);
  // a forgotten idle client starts with a full bucket, exactly what it would have had
  EXPECT_EQ(allowed_in_a_row(limiter, "peer:7", t0 + 10s), 2);
}

TEST(RateLimiter, RejectsUnusableSettings) {
  EXPECT_THROW(rate_limiter(rate_limit_settings{-1, 1, 10}), std::invalid_argument);
  EXPECT_THROW(rate_limiter(rate_limit_settings{10, 0.5, 10}), std::invalid_argument);
  EXPECT_THROW(rate_limiter(rate_limit_settings{10, 5, 0}), std::invalid_argument);
  EXPECT_NO_THROW(rate_limiter(rate_limit_settings{0, 0, 10}));  // off: burst does not matter
}

TEST(RateLimiter, FractionalBurstAboveOneIsHonoured) {
  rate_limiter limiter{{1, 2.5, 10}};
  EXPECT_EQ(allowed_in_a_row(limiter, "c", t0), 2);
  // 0.5 token left; 500 ms later there is one
  EXPECT_TRUE(limiter.take("c", t0 + 500ms).allowed);
}
