#include "runtime/resilience/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace sbm::resilience {
namespace {

using namespace std::chrono_literals;

constexpr time_point t0{std::chrono::hours(1)};

breaker_policy count_policy(int minimum, int size, double rate = 50.0) {
  breaker_policy p;
  p.minimum_calls = minimum;
  p.window_size = size;
  p.failure_rate = rate;
  p.open_for = 30s;
  p.slow_call_duration = 2s;
  p.half_open_calls = 2;
  return p;
}

// One admitted call, started `took` before `at`, that answers at `at`.
void call(circuit_breaker& b, time_point at, bool failed, std::chrono::milliseconds took = 0ms) {
  auto permit = b.acquire(at - took);
  ASSERT_TRUE(permit) << "refused at " << to_string(b.state());
  b.record(permit, at, failed);
}

TEST(CircuitBreaker, DefaultsReadAsTheSeedsFiveFailuresAndSixtySeconds) {
  circuit_breaker b;
  EXPECT_EQ(b.policy().minimum_calls, 5);
  EXPECT_EQ(b.policy().open_for, 60s);
  EXPECT_EQ(b.policy().window, window_kind::count_based);
  for (int i = 0; i < 20; ++i)
    call(b, t0 + i * 1ms, false);
  for (int i = 0; i < 4; ++i)
    call(b, t0 + 1s, true);
  EXPECT_EQ(b.state(), breaker_state::closed) << "four failures in a full window of ten";
  call(b, t0 + 1s, true);
  EXPECT_EQ(b.state(), breaker_state::open) << "the fifth failure in a row";

  circuit_breaker fresh;
  for (int i = 0; i < 4; ++i)
    call(fresh, t0, true);
  EXPECT_EQ(fresh.state(), breaker_state::closed) << "below minimum calls";
  call(fresh, t0, true);
  EXPECT_EQ(fresh.state(), breaker_state::open);
  EXPECT_EQ(fresh.retry_at(), t0 + 60s);
}

TEST(CircuitBreaker, CountWindowForgetsItsOldestOutcome) {
  circuit_breaker b{count_policy(4, 4)};
  call(b, t0, true);
  call(b, t0, false);
  call(b, t0, false);
  call(b, t0, false);  // window F S S S: 25 %
  EXPECT_EQ(b.snapshot(t0).failures, 1);
  call(b, t0, true);   // S S S F: the first failure left
  auto s = b.snapshot(t0);
  EXPECT_EQ(s.calls, 4);
  EXPECT_EQ(s.failures, 1);
  EXPECT_DOUBLE_EQ(s.failure_rate, 25.0);
  call(b, t0, true);   // S S F F: 50 %
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(CircuitBreaker, TimeWindowCountsOnlyTheLastSeconds) {
  auto p = count_policy(3, 10);
  p.window = window_kind::time_based;  // ten seconds
  circuit_breaker b{p};
  call(b, t0, true);
  call(b, t0 + 1s, true);
  EXPECT_EQ(b.snapshot(t0 + 1s).calls, 2);
  // Eleven seconds later both have left the window: one more failure is below minimum calls.
  call(b, t0 + 11s, true);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.snapshot(t0 + 11s).calls, 1);
  call(b, t0 + 12s, true);
  call(b, t0 + 13s, true);
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(CircuitBreaker, FailureRateBelowTheThresholdKeepsItClosed) {
  circuit_breaker b{count_policy(10, 10, 50.0)};
  for (int i = 0; i < 100; ++i)
    call(b, t0 + i * 1ms, i % 3 == 0);  // a third fail
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(CircuitBreaker, SlowCallsOpenItOnTheirOwnRate) {
  auto p = count_policy(3, 3);
  p.slow_call_rate = 60.0;
  circuit_breaker b{p};
  call(b, t0, false, 2s);  // slow successes: no failure at all
  call(b, t0, false, 1999ms);
  EXPECT_EQ(b.snapshot(t0).slow_calls, 1);
  call(b, t0, false, 3s);
  EXPECT_EQ(b.state(), breaker_state::open) << "two of three calls slow";
}

TEST(CircuitBreaker, OpenRefusesUntilOpenForThenAdmitsTheConfiguredTrials) {
  circuit_breaker b{count_policy(2, 4)};
  call(b, t0, true);
  call(b, t0, true);
  ASSERT_EQ(b.state(), breaker_state::open);
  EXPECT_FALSE(b.acquire(t0 + 29s));
  EXPECT_EQ(b.snapshot(t0).refused, 1u);
  auto first = b.acquire(t0 + 30s);
  ASSERT_TRUE(first);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  auto second = b.acquire(t0 + 30s);
  ASSERT_TRUE(second);
  EXPECT_FALSE(b.acquire(t0 + 30s)) << "only half_open_calls trials";
  b.record(first, t0 + 31s, false);
  EXPECT_EQ(b.state(), breaker_state::half_open) << "waits for every trial";
  b.record(second, t0 + 31s, false);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.snapshot(t0 + 31s).calls, 0) << "closing starts a fresh window";
}

TEST(CircuitBreaker, FailingTrialsOpenItAgainForAnotherOpenFor) {
  circuit_breaker b{count_policy(1, 1)};
  call(b, t0, true);
  auto a = b.acquire(t0 + 30s);
  auto c = b.acquire(t0 + 30s);
  b.record(a, t0 + 31s, true);
  b.record(c, t0 + 31s, false);  // 50 % of the trials failed
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.retry_at(), t0 + 61s);
}

TEST(CircuitBreaker, ReleasedTrialFreesItsSlotAndCountsNowhere) {
  circuit_breaker b{count_policy(1, 1)};
  call(b, t0, true);
  auto a = b.acquire(t0 + 30s);
  auto c = b.acquire(t0 + 30s);
  ASSERT_FALSE(b.acquire(t0 + 30s));
  b.release(a);
  auto d = b.acquire(t0 + 30s);
  ASSERT_TRUE(d);
  b.record(c, t0 + 30s, false);
  b.record(d, t0 + 30s, false);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(CircuitBreaker, LateResultsFromAnEarlierStateChangeNothing) {
  circuit_breaker b{count_policy(2, 2)};
  auto slow_call = b.acquire(t0);  // admitted while CLOSED, answers much later
  call(b, t0, true);
  call(b, t0, true);
  ASSERT_EQ(b.state(), breaker_state::open);
  b.record(slow_call, t0 + 1s, false);
  EXPECT_EQ(b.state(), breaker_state::open) << "a late success must not close it";
  EXPECT_EQ(b.retry_at(), t0 + 30s);

  // Trials close it; a failure admitted before the opening arrives now and must not reopen it.
  auto old_failure = b.acquire(t0 + 30s);  // a trial of the first HALF_OPEN...
  auto trial = b.acquire(t0 + 30s);
  b.record(old_failure, t0 + 30s, false);
  b.record(trial, t0 + 30s, false);
  ASSERT_EQ(b.state(), breaker_state::closed);
  b.record(old_failure, t0 + 31s, true);  // ...reported again, stamped with an old generation
  b.record(slow_call, t0 + 31s, true);
  EXPECT_EQ(b.snapshot(t0 + 31s).calls, 0);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(CircuitBreaker, ProbeMovesOpenToHalfOpenAndNeverClosesAlone) {
  circuit_breaker b{count_policy(1, 1)};
  call(b, t0, true);
  b.probe(t0 + 1s, false);
  EXPECT_EQ(b.state(), breaker_state::open) << "a failed probe while OPEN changes nothing";
  EXPECT_EQ(b.retry_at(), t0 + 30s) << "...nor pushes the trial further away";
  b.probe(t0 + 2s, true);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  b.probe(t0 + 3s, true);
  EXPECT_EQ(b.state(), breaker_state::half_open) << "only trial calls close it";
  b.probe(t0 + 4s, false);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.retry_at(), t0 + 34s);
  auto s = b.snapshot(t0 + 4s);
  EXPECT_EQ(s.transitions, 3u);
  EXPECT_EQ(s.last_from, breaker_state::half_open);
  EXPECT_EQ(s.last_transition, t0 + 4s);
  b.probe(t0 + 5s, true);
  call(b, t0 + 5s, false);
  call(b, t0 + 5s, false);
  EXPECT_EQ(b.state(), breaker_state::closed);
  b.probe(t0 + 6s, true);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(CircuitBreaker, ClampsNonsensePolicies) {
  breaker_policy p;
  p.minimum_calls = 50;
  p.window_size = 5;
  p.failure_rate = 0.0;
  p.half_open_calls = 0;
  circuit_breaker b{p};
  EXPECT_EQ(b.policy().minimum_calls, 5) << "a count window never holds more than its size";
  EXPECT_DOUBLE_EQ(b.policy().failure_rate, 100.0);
  EXPECT_EQ(b.policy().half_open_calls, 1);
  breaker_policy huge;
  huge.window_size = 1 << 30;
  EXPECT_EQ(circuit_breaker{huge}.policy().window_size, 10000);
}

}  // namespace
// The metrics count transitions by the state entered (sbm_breaker_transitions_total{to=...}).
TEST(CircuitBreaker, TransitionsAreCountedByTheStateEntered) {
  circuit_breaker b{count_policy(2, 2)};
  call(b, t0, true);
  call(b, t0, true);
  ASSERT_EQ(b.state(), breaker_state::open);
  b.probe(t0 + 1s, true);  // open -> half_open
  call(b, t0 + 2s, false);
  call(b, t0 + 2s, false);  // both trials answered: closed
  ASSERT_EQ(b.state(), breaker_state::closed);
  const auto s = b.snapshot(t0 + 2s);
  EXPECT_EQ(s.entered[static_cast<std::size_t>(breaker_state::open)], 1u);
  EXPECT_EQ(s.entered[static_cast<std::size_t>(breaker_state::half_open)], 1u);
  EXPECT_EQ(s.entered[static_cast<std::size_t>(breaker_state::closed)], 1u);
  EXPECT_EQ(s.transitions, 3u);
}

}  // namespace sbm::resilience
