#include "gateway/rendered_views.hpp"

#include <gtest/gtest.h>

#include <string>

using sbm::speaker_view;
using sbm::gateway::rendered_views;

namespace {

speaker_view view(std::string id, std::uint64_t samples = 0) {
  speaker_view v;
  v.speaker_id = std::move(id);
  v.bucket = "no_touch";
  v.samples_total = samples;
  return v;
}

struct counting_render {
  int calls = 0;
  std::string operator()(const speaker_view& v) {
    ++calls;
    return v.speaker_id + ":" + std::to_string(v.samples_total);
  }
};

}  // namespace

TEST(RenderedViews, AnUnchangedViewIsRenderedOnce) {
  rendered_views cache{8};
  counting_render render;
  auto r = [&](const speaker_view& v) { return render(v); };
  EXPECT_EQ(cache.body_of(view("a"), r), "a:0");
  EXPECT_EQ(cache.body_of(view("a"), r), "a:0");
  EXPECT_EQ(render.calls, 1);
}

TEST(RenderedViews, AnyChangedFieldRendersAgain) {
  rendered_views cache{8};
  counting_render render;
  auto r = [&](const speaker_view& v) { return render(v); };
  cache.body_of(view("a", 1), r);
  EXPECT_EQ(cache.body_of(view("a", 2), r), "a:2");
  auto pinned = view("a", 2);
  pinned.pinned = true;
  cache.body_of(pinned, r);
  auto moved = pinned;
  moved.updated_at_ms = 1;
  cache.body_of(moved, r);
  EXPECT_EQ(render.calls, 4);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RenderedViews, NeverHoldsMoreThanItsCapacity) {
  rendered_views cache{4};
  counting_render render;
  auto r = [&](const speaker_view& v) { return render(v); };
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(cache.body_of(view("s" + std::to_string(i)), r), "s" + std::to_string(i) + ":0");
    EXPECT_LE(cache.size(), cache.capacity());
  }
  EXPECT_EQ(render.calls, 100);
}

TEST(RenderedViews, AStampedBodyIsFoundAtItsStampOnly) {
  rendered_views cache{8};
  counting_render render;
  auto r = [&](const speaker_view& v) { return render(v); };
  const sbm::speaker_stamp first{7, 1, 3}, second{7, 1, 4};
  EXPECT_EQ(cache.held("a"), nullptr);
  EXPECT_EQ(cache.remember(view("a", 1), first, r).body, "a:1");
  EXPECT_EQ(cache.held("a")->stamp, first);
  ASSERT_NE(cache.at("a", first), nullptr);
  EXPECT_EQ(cache.at("a", first)->body, "a:1");
  EXPECT_EQ(cache.at("a", second), nullptr);
  EXPECT_EQ(cache.at("b", first), nullptr);
  // The same view at a new stamp is not rendered again, and what a read in flight holds stays.
  const auto in_flight = cache.held("a");
  cache.remember(view("a", 1), second, r);
  EXPECT_EQ(render.calls, 1);
  EXPECT_EQ(in_flight->stamp, first);
  EXPECT_EQ(in_flight->body, "a:1");
  EXPECT_EQ(cache.at("a", first), nullptr);
  EXPECT_NE(cache.at("a", second), nullptr);
}

TEST(RenderedViews, AnUnstampedChangeForgetsTheStamp) {
  // A write's answer shows another view: the stamp no longer names what the body shows.
  rendered_views cache{8};
  counting_render render;
  auto r = [&](const speaker_view& v) { return render(v); };
  const sbm::speaker_stamp stamp{7, 1, 3};
  cache.remember(view("a", 1), stamp, r);
  cache.body_of(view("a", 1), r);
  EXPECT_EQ(cache.held("a")->stamp, stamp) << "the same view: the stamp still names it";
  EXPECT_EQ(cache.body_of(view("a", 2), r), "a:2");
  EXPECT_EQ(cache.held("a")->stamp, sbm::speaker_stamp{});
  EXPECT_EQ(cache.at("a", stamp), nullptr);
}
