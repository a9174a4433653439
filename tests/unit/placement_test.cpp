// Rendezvous placement: every member gets its share, a join moves only what the new member wins,
// a loss moves only what the lost member held, and the answer never depends on list order. And
// the seed list as cluster.seeds gives it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "actors/cluster/core/seeds.hpp"
#include "runtime/domain/placement.hpp"

using sbm::domain::owner_index;
using sbm::domain::rendezvous_score;

namespace {

constexpr int speakers = 30000;

std::string speaker(int i) { return "spk-" + std::to_string(i); }

std::vector<std::string> owners(const std::vector<std::string>& members) {
  std::vector<std::string> out;
  out.reserve(speakers);
  for (int i = 0; i < speakers; ++i)
    out.push_back(members[owner_index(members, speaker(i))]);
  return out;
}

}  // namespace

TEST(Placement, NoMembersMeansNoOwner) {
  EXPECT_EQ(owner_index({}, "spk-1"), 0u);
}

TEST(Placement, TheScoreIsAFixedFunctionOfItsInputs) {
  // Every node must place speakers alike: the score depends on nothing but its two inputs.
  EXPECT_EQ(rendezvous_score("127.0.0.1:7000", "spk-1"), rendezvous_score("127.0.0.1:7000", "spk-1"));
  EXPECT_NE(rendezvous_score("ab", "c"), rendezvous_score("a", "bc"));
  EXPECT_NE(rendezvous_score("127.0.0.1:7000", "spk-1"), rendezvous_score("127.0.0.1:7001", "spk-1"));
}

TEST(Placement, EachOfThreeMembersOwnsAboutAThird) {
  const std::vector<std::string> members{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"};
  std::map<std::string, int> count;
  for (const auto& o : owners(members))
    ++count[o];
  ASSERT_EQ(count.size(), 3u);
  for (const auto& [member, n] : count) {
    // 10,000 expected; a binomial's standard deviation here is ~82, so +-5% is > 6 sigma.
    EXPECT_NEAR(n, speakers / 3, speakers / 3 / 20) << member;
  }
}

TEST(Placement, TheOrderOfTheMemberListDoesNotMatter) {
  std::vector<std::string> members{"a:1", "b:2", "c:3", "d:4"};
  const auto before = owners(members);
  std::reverse(members.begin(), members.end());
  EXPECT_EQ(owners(members), before);
}

TEST(Placement, AJoiningFourthMemberTakesAboutAQuarterAndNothingMovesElsewhere) {
  std::vector<std::string> members{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"};
  const auto before = owners(members);
  members.push_back("127.0.0.1:7003");
  const auto after = owners(members);
  int moved = 0;
  for (int i = 0; i < speakers; ++i) {
    if (before[i] == after[i])
      continue;
    ++moved;
    // a speaker that moves moves to the new member, never between the old ones
    EXPECT_EQ(after[i], "127.0.0.1:7003") << speaker(i);
  }
  EXPECT_NEAR(moved, speakers / 4, speakers / 4 / 20);
}

TEST(Placement, ALostMemberHandsOnlyItsOwnSpeakersToTheOthers) {
  std::vector<std::string> members{"n1:1", "n2:2", "n3:3", "n4:4"};
  const auto before = owners(members);
  members.erase(members.begin() + 2);  // n3 is lost
  const auto after = owners(members);
  std::map<std::string, int> inherited;
  for (int i = 0; i < speakers; ++i) {
    if (before[i] == "n3:3")
      ++inherited[after[i]];
    else
      EXPECT_EQ(after[i], before[i]) << speaker(i);
  }
  // n3's speakers spread over the three survivors, not onto one of them
  ASSERT_EQ(inherited.size(), 3u);
  for (const auto& [member, n] : inherited)
    EXPECT_NEAR(n, speakers / 4 / 3, speakers / 4 / 3 / 5) << member;
}

TEST(Seeds, AListOfHostPortPairsWithSpacesAndEmptyEntries) {
  auto parsed = sbm::cluster::parse_seeds(" 127.0.0.1:7000, node-b:7001,,");
  ASSERT_TRUE(std::holds_alternative<std::vector<sbm::cluster::seed_address>>(parsed));
  const auto& seeds = std::get<std::vector<sbm::cluster::seed_address>>(parsed);
  ASSERT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds[0], (sbm::cluster::seed_address{"127.0.0.1", 7000}));
  EXPECT_EQ(seeds[1], (sbm::cluster::seed_address{"node-b", 7001}));
  EXPECT_TRUE(std::get<std::vector<sbm::cluster::seed_address>>(sbm::cluster::parse_seeds("")).empty());
}

TEST(Seeds, ABadEntryIsNamed) {
  for (const char* text : {"127.0.0.1", "127.0.0.1:", ":7000", "a:70000", "a:0", "a:7o00", "a:123456"}) {
    auto parsed = sbm::cluster::parse_seeds(std::string{"ok:1,"} + text);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << text;
    EXPECT_NE(std::get<std::string>(parsed).find(text), std::string::npos) << std::get<std::string>(parsed);
  }
}
