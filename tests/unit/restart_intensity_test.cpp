#include "runtime/resilience/restart_intensity.hpp"

#include <gtest/gtest.h>

namespace sbm::resilience {
namespace {

using namespace std::chrono_literals;

const time_point t0{std::chrono::hours(1)};

TEST(RestartIntensity, AllowsUpToTheLimitWithinThePeriod) {
  restart_intensity r{restart_limit{3, 10s}};
  EXPECT_TRUE(r.record(t0));
  EXPECT_TRUE(r.record(t0 + 1s));
  EXPECT_TRUE(r.record(t0 + 2s));
  EXPECT_EQ(r.recent(t0 + 2s), 3);
  EXPECT_FALSE(r.record(t0 + 3s)) << "the fourth restart within 10 s escalates";
  EXPECT_EQ(r.recent(t0 + 3s), 4);
}

TEST(RestartIntensity, OldRestartsLeaveTheWindow) {
  restart_intensity r{restart_limit{2, 10s}};
  EXPECT_TRUE(r.record(t0));
  EXPECT_TRUE(r.record(t0 + 5s));
  EXPECT_EQ(r.recent(t0 + 10s), 2) << "a restart exactly one period ago still counts, as in OTP";
  EXPECT_EQ(r.recent(t0 + 10s + 1ms), 1);
  EXPECT_TRUE(r.record(t0 + 10s + 1ms)) << "the first restart has aged out";
  EXPECT_FALSE(r.record(t0 + 12s));
}

TEST(RestartIntensity, TheWindowIncludesItsOldestInstant) {
  restart_intensity r{restart_limit{1, 10s}};
  EXPECT_TRUE(r.record(t0));
  EXPECT_FALSE(r.record(t0 + 10s)) << "two restarts exactly one period apart are within the period";

  restart_intensity fresh{restart_limit{1, 10s}};
  EXPECT_TRUE(fresh.record(t0));
  EXPECT_TRUE(fresh.record(t0 + 10s + 1ms));
}

TEST(RestartIntensity, SteadySlowRestartsNeverEscalate) {
  restart_intensity r{restart_limit{1, 1s}};
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(r.record(t0 + i * 1001ms)) << i;
  EXPECT_EQ(r.recent(t0 + 999 * 1001ms), 1);
}

TEST(RestartIntensity, ZeroRestartsMeansEscalateAtOnce) {
  restart_intensity r{restart_limit{0, 10s}};
  EXPECT_FALSE(r.record(t0));
}

TEST(RestartIntensity, DefaultsAreFiveInTenSeconds) {
  restart_intensity r;
  EXPECT_EQ(r.limit().max_restarts, 5);
  EXPECT_EQ(r.limit().period, 10s);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.record(t0 + i * 100ms));
  EXPECT_FALSE(r.record(t0 + 500ms));
  EXPECT_EQ(r.recent(t0 + 100s), 0);
}

}  // namespace
}  // namespace sbm::resilience
