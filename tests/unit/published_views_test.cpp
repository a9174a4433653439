#include "messages/published_views.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using sbm::published_views;
using sbm::speaker_stamp;
using sbm::speaker_view;

namespace {

speaker_view view_of(const std::string& id, std::uint64_t samples, const std::string& client = "c1") {
  speaker_view v;
  v.speaker_id = id;
  v.client_id = client;
  v.samples_total = samples;
  return v;
}

// Two activations: the owner tokens the board compares on withdrawal.
int first_activation = 0;
int second_activation = 0;

}  // namespace

TEST(PublishedViews, PublishedStateIsFoundAndReplacedByTheNext) {
  published_views board{4};
  EXPECT_EQ(board.find("spk-1"), nullptr);
  ASSERT_TRUE(board.publish(&first_activation, view_of("spk-1", 1), speaker_stamp{7, 1, 1}));
  auto held = board.find("spk-1");
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->view.samples_total, 1u);
  EXPECT_EQ(held->stamp, (speaker_stamp{7, 1, 1}));
  ASSERT_TRUE(board.publish(&first_activation, view_of("spk-1", 2), speaker_stamp{7, 1, 2}));
  EXPECT_EQ(board.find("spk-1")->view.samples_total, 2u);
  // A reader that took the old snapshot still holds it, unchanged.
  EXPECT_EQ(held->view.samples_total, 1u);
  EXPECT_EQ(board.size(), 1u);
}

TEST(PublishedViews, OnlyThePublishingActivationWithdraws) {
  published_views board{4};
  board.publish(&first_activation, view_of("spk-1", 1), speaker_stamp{7, 1, 1});
  board.withdraw("spk-1", &second_activation);
  ASSERT_NE(board.find("spk-1"), nullptr);
  board.withdraw("spk-1", &first_activation);
  EXPECT_EQ(board.find("spk-1"), nullptr);
  // A later activation published meanwhile: the ended one's late withdrawal leaves it alone.
  board.publish(&first_activation, view_of("spk-2", 1), speaker_stamp{7, 1, 1});
  board.publish(&second_activation, view_of("spk-2", 1), speaker_stamp{8, 1, 1});
  board.withdraw("spk-2", &first_activation);
  ASSERT_NE(board.find("spk-2"), nullptr);
  EXPECT_EQ(board.find("spk-2")->stamp.activation, 8u);
  board.withdraw("unknown", &first_activation);  // nothing to take: no effect
  EXPECT_EQ(board.size(), 1u);
}

TEST(PublishedViews, PastTheBoundNothingIsPublished) {
  published_views board{2};
  EXPECT_TRUE(board.publish(&first_activation, view_of("a", 1), {}));
  EXPECT_TRUE(board.publish(&first_activation, view_of("b", 1), {}));
  EXPECT_FALSE(board.publish(&first_activation, view_of("c", 1), {}));
  EXPECT_EQ(board.find("c"), nullptr);
  EXPECT_EQ(board.size(), 2u);
  // A speaker already on the board still publishes its changes when the board is full.
  EXPECT_TRUE(board.publish(&first_activation, view_of("a", 2), {}));
  EXPECT_EQ(board.find("a")->view.samples_total, 2u);
  // Room made by a withdrawal is taken by the next.
  board.withdraw("b", &first_activation);
  EXPECT_TRUE(board.publish(&first_activation, view_of("c", 1), {}));
  EXPECT_NE(board.find("c"), nullptr);
  EXPECT_EQ(board.size(), board.capacity());
}

TEST(PublishedViews, TheBodyIsRenderedOncePerSnapshot) {
  published_views board{1};
  board.publish(&first_activation, view_of("a", 3), {});
  int renders = 0;
  const published_views::renderer render = [&](const speaker_view& v) {
    ++renders;
    return "samples " + std::to_string(v.samples_total);
  };
  const auto held = board.find("a");
  EXPECT_EQ(held->body(render), "samples 3");
  EXPECT_EQ(held->body(render), "samples 3");
  EXPECT_EQ(renders, 1);
  board.publish(&first_activation, view_of("a", 4), {});
  EXPECT_EQ(board.find("a")->body(render), "samples 4");
  EXPECT_EQ(renders, 2);
}

// Readers on other threads while the single writer publishes and withdraws: every snapshot a
// reader gets is whole (its body is rendered from its own view), and versions it sees never go
// back. Run under ThreadSanitizer this is also the board's race check.
TEST(PublishedViews, ConcurrentReadersSeeWholeSnapshotsInOrder) {
  published_views board{8};
  constexpr std::uint64_t writes = 20000;
  std::atomic<bool> done{false};
  const published_views::renderer render = [](const speaker_view& v) {
    return v.speaker_id + ":" + std::to_string(v.samples_total) + ":" + v.client_id;
  };
  std::atomic<std::uint64_t> reads{0};
  std::atomic<int> broken{0};
  auto reader = [&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      auto s = board.find("spk");
      if (!s)
        continue;
      reads.fetch_add(1);
      const auto n = s->view.samples_total;
      if (n < last || static_cast<std::uint64_t>(s->stamp.version) != n ||
          s->body(render) != "spk:" + std::to_string(n) + ":client-" + std::to_string(n % 3))
        broken.fetch_add(1);
      last = n;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back(reader);
  for (std::uint64_t n = 1; n <= writes; ++n) {
    board.publish(&first_activation, view_of("spk", n, "client-" + std::to_string(n % 3)),
                  speaker_stamp{1, 1, static_cast<std::int64_t>(n)});
    if (n % 1000 == 0)  // a reload: withdrawn, then published again
      board.withdraw("spk", &first_activation);
  }
  board.publish(&first_activation, view_of("spk", writes + 1, "client-" + std::to_string((writes + 1) % 3)),
                speaker_stamp{1, 1, static_cast<std::int64_t>(writes + 1)});
  // Readers are not starved: wait (on a condition, not a clock) until they have read something.
  while (reads.load() == 0)
    std::this_thread::yield();
  done = true;
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(broken.load(), 0);
}
