#include "runtime/resilience/backoff.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace sbm::resilience {
namespace {

using namespace std::chrono_literals;

// The random value that maps to factor 1.0 exactly: unit = 0.5.
constexpr std::uint64_t middle = std::uint64_t{1} << 63;

TEST(Backoff, GrowsExponentiallyFromBase) {
  const backoff_policy p{3, 1000ms, 60000ms, 0.2};
  EXPECT_EQ(backoff_delay(p, 0, middle), 1000ms);
  EXPECT_EQ(backoff_delay(p, 1, middle), 2000ms);
  EXPECT_EQ(backoff_delay(p, 2, middle), 4000ms);
  EXPECT_EQ(backoff_delay(p, 5, middle), 32000ms);
}

TEST(Backoff, IsCapped) {
  const backoff_policy p{10, 1000ms, 60000ms, 0.0};
  EXPECT_EQ(backoff_delay(p, 6, 0), 60000ms) << "64 s is capped to 60 s";
  EXPECT_EQ(backoff_delay(p, 20, 0), 60000ms);
  const backoff_policy jittery{10, 1000ms, 60000ms, 0.5};
  EXPECT_EQ(backoff_delay(jittery, 10, ~std::uint64_t{0}), 60000ms) << "upward jitter never exceeds the cap";
}

TEST(Backoff, JitterStaysWithinBoundsAndCoversThem) {
  const backoff_policy p{3, 1000ms, 60000ms, 0.2};
  std::mt19937_64 rng(42);
  auto lowest = std::chrono::milliseconds::max(), highest = std::chrono::milliseconds::min();
  for (int i = 0; i < 100000; ++i) {
    const auto d = backoff_delay(p, 2, rng());
    ASSERT_GE(d, 3200ms);
    ASSERT_LE(d, 4800ms);
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  EXPECT_LT(lowest, 3250ms) << "the low end of the jitter range is reached";
  EXPECT_GT(highest, 4750ms) << "the high end of the jitter range is reached";
  EXPECT_EQ(backoff_delay(p, 2, 0), 3200ms);
  EXPECT_EQ(backoff_delay(p, 2, ~std::uint64_t{0}), 4800ms);
}

TEST(Backoff, IsDeterministicForTheSameInput) {
  const backoff_policy p;
  for (std::uint64_t r : {0ull, 12345ull, 0xdeadbeefcafebabeull}) {
    EXPECT_EQ(backoff_delay(p, 1, r), backoff_delay(p, 1, r));
  }
  EXPECT_NE(backoff_delay(p, 1, 0), backoff_delay(p, 1, ~std::uint64_t{0}));
}

TEST(Backoff, HugeAttemptsDoNotOverflow) {
  const backoff_policy p{3, 1000ms, 60000ms, 0.2};
  for (int attempt : {31, 62, 63, 64, 1000, std::numeric_limits<int>::max()}) {
    const auto d = backoff_delay(p, attempt, 0);
    EXPECT_EQ(d, 48000ms) << attempt;  // the cap, jittered down by 20 %
  }
  const backoff_policy extreme{3, std::chrono::milliseconds::max(), std::chrono::milliseconds::max(), 0.5};
  EXPECT_EQ(backoff_delay(extreme, 100, ~std::uint64_t{0}), std::chrono::milliseconds::max());
  EXPECT_GE(backoff_delay(extreme, 100, 0), 0ms);
}

TEST(Backoff, NeverNegative) {
  const backoff_policy negative{3, -5ms, 1000ms, 0.2};
  EXPECT_EQ(backoff_delay(negative, 0, 0), 0ms);
  const backoff_policy wild_jitter{3, 1000ms, 60000ms, 7.0};
  EXPECT_GE(backoff_delay(wild_jitter, 0, 0), 0ms);
  EXPECT_LE(backoff_delay(wild_jitter, 0, ~std::uint64_t{0}), 2000ms) << "jitter is clamped to 100 %";
  EXPECT_EQ(backoff_delay(backoff_policy{}, -3, middle), 1000ms) << "a negative attempt counts as the first";
}

TEST(Backoff, RetriesLeftCountsRetriesMade) {
  const backoff_policy p{3, 1000ms, 60000ms, 0.2};
  EXPECT_TRUE(retries_left(p, 0));
  EXPECT_TRUE(retries_left(p, 2));
  EXPECT_FALSE(retries_left(p, 3));
  EXPECT_FALSE(retries_left(p, 4));
  EXPECT_FALSE(retries_left(backoff_policy{0, 1000ms, 60000ms, 0.2}, 0));
}

}  // namespace
}  // namespace sbm::resilience
