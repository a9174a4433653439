#include <gtest/gtest.h>

#include "gateway/connection_limits.hpp"

using namespace sbm::gateway;
using namespace std::chrono_literals;

namespace {
const connection_limits::time_point t0{};
}  // namespace

TEST(ConnectionLimits, OneAddressCannotTakeMoreThanItsShare) {
  connection_limits limits{{3, 0, 1, 100}};
  std::uint64_t id = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limits.admit("10.0.0.1", t0));
    limits.opened(++id, "10.0.0.1");
  }
  EXPECT_FALSE(limits.admit("10.0.0.1", t0));
  // another address is not affected
  EXPECT_TRUE(limits.admit("10.0.0.2", t0));
  limits.opened(++id, "10.0.0.2");
  // a closed connection frees its slot
  limits.closed(1);
  EXPECT_EQ(limits.open_from("10.0.0.1"), 2u);
  EXPECT_TRUE(limits.admit("10.0.0.1", t0));
  // closing what was never opened changes nothing
  limits.closed(999);
  EXPECT_EQ(limits.open_total(), 3u);
  limits.closed(2);
  limits.closed(3);
  limits.closed(4);
  EXPECT_EQ(limits.open_total(), 0u);
  EXPECT_EQ(limits.open_from("10.0.0.1"), 0u);
}

TEST(ConnectionLimits, NewConnectionsPerAddressAreRateLimited) {
  connection_limits limits{{1000, 2, 3, 100}};
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limits.admit("10.0.0.1", t0)) << i;
  EXPECT_FALSE(limits.admit("10.0.0.1", t0));
  EXPECT_TRUE(limits.admit("10.0.0.2", t0));
  // two per second come back
  EXPECT_TRUE(limits.admit("10.0.0.1", t0 + 500ms));
  EXPECT_FALSE(limits.admit("10.0.0.1", t0 + 500ms));
}

TEST(ConnectionLimits, TrustedProxiesAreExempt) {
  connection_limits limits{{1, 1, 1, 100}, {"10.0.0.9"}};
  for (std::uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(limits.admit("10.0.0.9", t0));
    limits.opened(id, "10.0.0.9");
  }
  EXPECT_THROW((connection_limits{{0, 1, 1, 100}}), std::invalid_argument);
}
