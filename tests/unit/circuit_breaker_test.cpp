#include "runtime/resilience/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace sbm::resilience {
namespace {

using namespace std::chrono_literals;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  time_point t0{std::chrono::hours(1)};
  circuit_breaker breaker{breaker_policy{3, 30s}};

  void fail_times(int n, time_point at) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(breaker.allow(at));
      breaker.on_failure(at);
    }
  }
};

TEST_F(CircuitBreakerTest, StartsClosedAndAllowsCalls) {
  EXPECT_EQ(breaker.state(), breaker_state::closed);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(breaker.allow(t0 + i * 1ms));
  EXPECT_EQ(breaker.policy().failure_threshold, 3);
  EXPECT_EQ(breaker.policy().open_for, 30s);
}

TEST_F(CircuitBreakerTest, OpensAtTheThreshold) {
  fail_times(2, t0);
  EXPECT_EQ(breaker.state(), breaker_state::closed);
  EXPECT_EQ(breaker.consecutive_failures(), 2);
  fail_times(1, t0 + 1s);
  EXPECT_EQ(breaker.state(), breaker_state::open);
  EXPECT_EQ(breaker.consecutive_failures(), 3);
  EXPECT_EQ(breaker.retry_at(), t0 + 1s + 30s);
}

TEST_F(CircuitBreakerTest, SuccessResetsTheCount) {
  fail_times(2, t0);
  ASSERT_TRUE(breaker.allow(t0));
  breaker.on_success(t0);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  fail_times(2, t0);
  EXPECT_EQ(breaker.state(), breaker_state::closed) << "failures must be consecutive to open";
  fail_times(1, t0);
  EXPECT_EQ(breaker.state(), breaker_state::open);
}

TEST_F(CircuitBreakerTest, OpenRefusesUntilTheTimeoutPasses) {
  fail_times(3, t0);
  EXPECT_FALSE(breaker.allow(t0));
  EXPECT_FALSE(breaker.allow(t0 + 29s));
  EXPECT_FALSE(breaker.allow(t0 + 30s - 1ms));
  EXPECT_EQ(breaker.state(), breaker_state::open);
  EXPECT_TRUE(breaker.allow(t0 + 30s));
  EXPECT_EQ(breaker.state(), breaker_state::half_open);
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsExactlyOneTrial) {
  fail_times(3, t0);
  const auto later = t0 + 31s;
  EXPECT_TRUE(breaker.allow(later));
  EXPECT_FALSE(breaker.allow(later));
  EXPECT_FALSE(breaker.allow(later + 1h)) << "the trial is outstanding however long it takes";
  EXPECT_EQ(breaker.state(), breaker_state::half_open);
}

TEST_F(CircuitBreakerTest, TrialSuccessCloses) {
  fail_times(3, t0);
  ASSERT_TRUE(breaker.allow(t0 + 30s));
  breaker.on_success(t0 + 30s);
  EXPECT_EQ(breaker.state(), breaker_state::closed);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  EXPECT_TRUE(breaker.allow(t0 + 30s));
  EXPECT_TRUE(breaker.allow(t0 + 30s));
}

TEST_F(CircuitBreakerTest, TrialFailureReopensWithAFreshTimeout) {
  fail_times(3, t0);
  const auto trial = t0 + 45s;
  ASSERT_TRUE(breaker.allow(trial));
  breaker.on_failure(trial);
  EXPECT_EQ(breaker.state(), breaker_state::open);
  EXPECT_EQ(breaker.retry_at(), trial + 30s);
  EXPECT_FALSE(breaker.allow(trial + 29s));
  EXPECT_TRUE(breaker.allow(trial + 30s));
  EXPECT_EQ(breaker.state(), breaker_state::half_open);
}

TEST_F(CircuitBreakerTest, LateFailuresDoNotPostponeTheTrial) {
  fail_times(3, t0);
  breaker.on_failure(t0 + 10s);  // a call admitted before opening reports late
  EXPECT_EQ(breaker.retry_at(), t0 + 30s);
  EXPECT_TRUE(breaker.allow(t0 + 30s));
}

TEST(CircuitBreaker, DefaultsFollowTheSpec) {
  circuit_breaker breaker;
  EXPECT_EQ(breaker.policy().failure_threshold, 5);
  EXPECT_EQ(breaker.policy().open_for, std::chrono::seconds(60));
  const time_point t{};
  for (int i = 0; i < 4; ++i) breaker.on_failure(t);
  EXPECT_EQ(breaker.state(), breaker_state::closed);
  breaker.on_failure(t);
  EXPECT_EQ(breaker.state(), breaker_state::open);
}

TEST(CircuitBreaker, NonPositiveThresholdActsAsOne) {
  circuit_breaker breaker{breaker_policy{0, std::chrono::seconds(1)}};
  EXPECT_EQ(breaker.policy().failure_threshold, 1);
  breaker.on_failure(time_point{});
  EXPECT_EQ(breaker.state(), breaker_state::open);
}

TEST(CircuitBreaker, StatesHaveNames) {
  EXPECT_EQ(to_string(breaker_state::closed), "closed");
  EXPECT_EQ(to_string(breaker_state::open), "open");
  EXPECT_EQ(to_string(breaker_state::half_open), "half_open");
}

}  // namespace
}  // namespace sbm::resilience
