// Request ids: which client ids are kept, that made ones are unique, and how a problem body
// gains its request_id member.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>

#include "gateway/request_id.hpp"

using namespace sbm::gateway;

TEST(RequestId, KeepsASaneClientId) {
  request_id_generator ids;
  std::string sent = "trace-01.AB_c~d:e";
  EXPECT_EQ(request_id_for(&sent, ids), sent);
}

TEST(RequestId, ReplacesAnInsaneClientId) {
  request_id_generator ids;
  for (std::string bad : {std::string{}, std::string(129, 'a'), std::string{"a b"},
                          std::string{"quote\"d"}, std::string{"new\nline"}, std::string{"ü"}}) {
    auto id = request_id_for(&bad, ids);
    EXPECT_NE(id, bad);
    EXPECT_TRUE(sane_request_id(id)) << id;
  }
  EXPECT_TRUE(sane_request_id(request_id_for(nullptr, ids)));
}

TEST(RequestId, MadeIdsAreUniqueAndDifferBetweenGenerators) {
  request_id_generator a, b;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(a.next()).second);
    EXPECT_TRUE(seen.insert(b.next()).second);
  }
}

TEST(RequestId, IsAddedToAProblemBodyAsItsLastMember) {
  auto body = with_request_id(R"({"status":404,"detail":"no"})", "r-1");
  auto parsed = nlohmann::json::parse(body);
  EXPECT_EQ(parsed["request_id"], "r-1");
  EXPECT_EQ(parsed["status"], 404);
  EXPECT_EQ(nlohmann::json::parse(with_request_id("{}", "r-2"))["request_id"], "r-2");
  EXPECT_EQ(with_request_id("not json", "r-3"), "not json");
}
