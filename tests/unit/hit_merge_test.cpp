// The merge of a scattered pattern search: the cluster's top k from each member's top k.
#include "actors/patterns/core/hit_merge.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

using sbm::patterns::merge_top_k;
using sbm::patterns::merged_pick;
using sbm::patterns::ranked_hit;
using lists = std::vector<std::vector<ranked_hit>>;

namespace {

std::vector<std::int64_t> ids(const lists& in, const std::vector<merged_pick>& picks) {
  std::vector<std::int64_t> out;
  for (const auto& p : picks) out.push_back(in[p.source][p.at].pattern_id);
  return out;
}

}  // namespace

TEST(HitMerge, BestFirstAcrossMembersAndCutAtK) {
  const lists in{{{1, 0.9}, {4, 0.5}, {7, 0.1}}, {{2, 0.95}, {5, 0.4}}, {{3, 0.6}}};
  EXPECT_EQ(ids(in, merge_top_k(in, 4)), (std::vector<std::int64_t>{2, 1, 3, 4}));
  EXPECT_EQ(ids(in, merge_top_k(in, 10)), (std::vector<std::int64_t>{2, 1, 3, 4, 5, 7}));
  EXPECT_TRUE(merge_top_k(in, 0).empty());
}

TEST(HitMerge, PicksPointIntoTheirSourceLists) {
  const lists in{{{1, 0.2}}, {{2, 0.3}, {3, 0.1}}};
  const auto picks = merge_top_k(in, 2);
  ASSERT_EQ(picks.size(), 2u);
  EXPECT_EQ(picks[0].source, 1u);
  EXPECT_EQ(picks[0].at, 0u);
  EXPECT_EQ(picks[1].source, 0u);
  EXPECT_EQ(picks[1].at, 0u);
}

TEST(HitMerge, APatternTwoMembersHoldIsKeptOnceAndDoesNotTakeAPlace) {
  // Pattern 5 is on both members (its speaker is moving): once, and k still fills with others.
  const lists in{{{5, 0.8}, {6, 0.3}}, {{5, 0.8}, {9, 0.2}}};
  EXPECT_EQ(ids(in, merge_top_k(in, 3)), (std::vector<std::int64_t>{5, 6, 9}));
}

TEST(HitMerge, TiesGoToTheSmallerPatternIdAsOneIndexAnswers) {
  const lists in{{{8, 0.5}}, {{3, 0.5}}, {{5, 0.5}}};
  EXPECT_EQ(ids(in, merge_top_k(in, 3)), (std::vector<std::int64_t>{3, 5, 8}));
}

TEST(HitMerge, EmptyAndMissingMembersMergeTheRest) {
  const lists in{{}, {{1, 0.1}}, {}};
  EXPECT_EQ(ids(in, merge_top_k(in, 5)), (std::vector<std::int64_t>{1}));
  EXPECT_TRUE(merge_top_k(lists{}, 5).empty());
}

TEST(HitMerge, EqualsTheTopKOfOneIndexHoldingEverything) {
  // Random patterns spread over 4 members: each member's own top k, merged, is the top k of all.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> sim(-1, 1);
  for (int round = 0; round < 50; ++round) {
    std::vector<ranked_hit> all;
    lists members(4);
    for (std::int64_t id = 1; id <= 200; ++id) {
      ranked_hit h{id, std::round(sim(rng) * 100) / 100};  // rounded: ties happen
      all.push_back(h);
      members[rng() % 4].push_back(h);
    }
    const std::size_t k = 1 + rng() % 20;
    auto better = [](const ranked_hit& a, const ranked_hit& b) {
      return a.similarity != b.similarity ? a.similarity > b.similarity : a.pattern_id < b.pattern_id;
    };
    for (auto& m : members) {
      std::sort(m.begin(), m.end(), better);
      if (m.size() > k) m.resize(k);
    }
    std::sort(all.begin(), all.end(), better);
    std::vector<std::int64_t> expected;
    for (std::size_t i = 0; i < k; ++i) expected.push_back(all[i].pattern_id);
    EXPECT_EQ(ids(members, merge_top_k(members, k)), expected) << "round " << round;
  }
}
