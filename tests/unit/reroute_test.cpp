// When the gateway resends a request refused because its speaker is between owners: only that
// refusal, only when sending twice is safe, a bounded number of times, and never past the
// request's deadline.
#include <gtest/gtest.h>

#include <chrono>

#include "gateway/reroute.hpp"

using namespace std::chrono_literals;
using sbm::errc;
using sbm::gateway::reroute_delay;
using sbm::gateway::reroute_policy;

namespace {

constexpr std::uint64_t middle = 1ULL << 63;  // no jitter either way

TEST(Reroute, AMoveIsResentWithAGrowingBackOff) {
  EXPECT_EQ(reroute_delay(errc::moving, true, 0, 10s, middle), 50ms);
  EXPECT_EQ(reroute_delay(errc::moving, true, 1, 10s, middle), 100ms);
  EXPECT_EQ(reroute_delay(errc::moving, true, 2, 10s, middle), 200ms);
}

TEST(Reroute, ResendsAreBounded) {
  EXPECT_FALSE(reroute_delay(errc::moving, true, reroute_policy.max_retries, 10s, middle));
  EXPECT_FALSE(reroute_delay(errc::moving, true, 100, 10s, middle));
}

TEST(Reroute, OnlyAMoveAndOnlyWhenSafe) {
  EXPECT_FALSE(reroute_delay(errc::moving, false, 0, 10s, middle));
  for (auto other : {errc::unavailable, errc::overloaded, errc::outcome_unknown, errc::stale_owner,
                     errc::deadline_exceeded, errc::conflict, errc::internal})
    EXPECT_FALSE(reroute_delay(other, true, 0, 10s, middle)) << sbm::to_string(other);
}

TEST(Reroute, NeverWaitsPastTheDeadline) {
  EXPECT_FALSE(reroute_delay(errc::moving, true, 0, 50ms, middle));
  EXPECT_FALSE(reroute_delay(errc::moving, true, 0, 0ms, middle));
  EXPECT_TRUE(reroute_delay(errc::moving, true, 0, 51ms, middle));
  // The jitter stays within the policy's fraction.
  for (std::uint64_t bits : {0ULL, ~0ULL}) {
    const auto wait = reroute_delay(errc::moving, true, 0, 10s, bits);
    ASSERT_TRUE(wait);
    EXPECT_GE(*wait, 40ms);
    EXPECT_LE(*wait, 60ms);
  }
}

}  // namespace
