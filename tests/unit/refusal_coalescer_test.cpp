#include "actors/users/core/refusal_coalescer.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using sbm::users::refusal;
using sbm::users::refusal_coalescer;

namespace {

refusal from_peer(std::string peer, std::int32_t status = 401, std::string target = "GET /v1/speakers") {
  refusal r;
  r.actor = "anonymous";
  r.actor_kind = "anonymous";
  r.action = "request.refused";
  r.target = std::move(target);
  r.status = status;
  r.peer = std::move(peer);
  r.detail = R"({"reason":"missing bearer token"})";
  return r;
}

}  // namespace

TEST(RefusalCoalescer, ABurstFromOneClientBecomesOneRowWithACount) {
  refusal_coalescer window{8};
  EXPECT_TRUE(window.add(from_peer("10.0.0.1")));
  for (int i = 0; i < 9999; ++i)
    EXPECT_FALSE(window.add(from_peer("10.0.0.1")));
  auto batch = window.take();
  ASSERT_EQ(batch.rows.size(), 1u);
  EXPECT_EQ(batch.rows[0].count, 10000u);
  EXPECT_EQ(batch.rows[0].first.peer, "10.0.0.1");
  EXPECT_EQ(batch.rows[0].first.detail, R"({"reason":"missing bearer token"})");
  EXPECT_EQ(batch.dropped, 0u);
}

TEST(RefusalCoalescer, DifferentWhoWhatOrWhereAreKeptApartInArrivalOrder) {
  refusal_coalescer window{8};
  window.add(from_peer("10.0.0.1"));
  window.add(from_peer("10.0.0.2"));
  window.add(from_peer("10.0.0.1", 403));
  window.add(from_peer("10.0.0.1", 401, "DELETE /v1/speakers/x/bucket-pin"));
  auto other_actor = from_peer("10.0.0.1");
  other_actor.actor = "mallory";
  other_actor.actor_kind = "user";
  window.add(other_actor);
  window.add(from_peer("10.0.0.2"));
  auto batch = window.take();
  ASSERT_EQ(batch.rows.size(), 5u);
  EXPECT_EQ(batch.rows[0].first.peer, "10.0.0.1");
  EXPECT_EQ(batch.rows[0].count, 1u);
  EXPECT_EQ(batch.rows[1].first.peer, "10.0.0.2");
  EXPECT_EQ(batch.rows[1].count, 2u);
  EXPECT_EQ(batch.rows[2].first.status, 403);
  EXPECT_EQ(batch.rows[3].first.target, "DELETE /v1/speakers/x/bucket-pin");
  EXPECT_EQ(batch.rows[4].first.actor, "mallory");
}

TEST(RefusalCoalescer, AFullWindowCountsWhatItCannotHold) {
  refusal_coalescer window{3};
  for (int i = 0; i < 1000; ++i)
    window.add(from_peer("10.0.0." + std::to_string(i % 250)));
  auto batch = window.take();
  EXPECT_EQ(batch.rows.size(), 3u);
  // the three kept peers still count their repeats
  std::uint64_t kept = 0;
  for (const auto& r : batch.rows)
    kept += r.count;
  EXPECT_EQ(kept, 12u);
  EXPECT_EQ(batch.dropped, 1000u - 12u);
}

TEST(RefusalCoalescer, TakeStartsANewWindow) {
  refusal_coalescer window{2};
  EXPECT_TRUE(window.empty());
  EXPECT_TRUE(window.add(from_peer("a")));
  window.add(from_peer("b"));
  window.add(from_peer("c"));
  EXPECT_FALSE(window.empty());
  window.take();
  EXPECT_TRUE(window.empty());
  EXPECT_TRUE(window.add(from_peer("c")));
  auto batch = window.take();
  ASSERT_EQ(batch.rows.size(), 1u);
  EXPECT_EQ(batch.rows[0].first.peer, "c");
  EXPECT_EQ(batch.dropped, 0u);
}

TEST(RefusalCoalescer, OnlyDroppedRefusalsStillMakeTheWindowNonEmpty) {
  refusal_coalescer window{1};
  window.add(from_peer("a"));
  window.take();
  EXPECT_TRUE(window.add(from_peer("b")));
  EXPECT_FALSE(window.add(from_peer("c")));  // dropped, but the window is not empty
  auto batch = window.take();
  EXPECT_EQ(batch.rows.size(), 1u);
  EXPECT_EQ(batch.dropped, 1u);
}

TEST(RefusalCoalescer, NeedsRoomForOneRow) {
  EXPECT_THROW(refusal_coalescer{0}, std::invalid_argument);
}
