#include <gtest/gtest.h>

#include "gateway/router.hpp"

using namespace sbm::gateway;

namespace {

router make_router() {
  router r;
  r.add("GET", "/v1/speakers", 1);
  r.add("POST", "/v1/speakers", 2);
  r.add("GET", "/v1/speakers/{id}", 3);
  r.add("PUT", "/v1/speakers/{id}/bucket-pin", 4);
  r.add("DELETE", "/v1/speakers/{id}/bucket-pin", 5);
  return r;
}

}  // namespace

TEST(Router, MatchesLiteralAndPlaceholderRoutes) {
  auto r = make_router();
  auto m = std::get<route_match>(r.match("GET", "/v1/speakers"));
  EXPECT_EQ(m.route, 1);
  m = std::get<route_match>(r.match("GET", "/v1/speakers/dr-smith"));
  EXPECT_EQ(m.route, 3);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], "dr-smith");
  EXPECT_EQ(std::get<route_match>(r.match("GET", "/v1/speakers/")).route, 1);
}

TEST(Router, DecodesPlaceholdersOnce) {
  auto r = make_router();
  auto m = std::get<route_match>(r.match("PUT", "/v1/speakers/dr%20o%27brien/bucket-pin"));
  EXPECT_EQ(m.params[0], "dr o'brien");
  // an encoded slash stays inside the value: it cannot reach another route
  m = std::get<route_match>(r.match("GET", "/v1/speakers/..%2F..%2Fetc"));
  EXPECT_EQ(m.params[0], "../../etc");
}

TEST(Router, UnknownPathsAndMethods) {
  auto r = make_router();
  EXPECT_TRUE(std::holds_alternative<route_not_found>(r.match("GET", "/v2/speakers")));
  EXPECT_TRUE(std::holds_alternative<route_not_found>(r.match("GET", "/v1/speakers/a/b/c")));
  EXPECT_TRUE(std::holds_alternative<route_not_found>(r.match("GET", "/v1/speakers//bucket-pin")));
  auto bad = std::get<route_bad_method>(r.match("PATCH", "/v1/speakers/x/bucket-pin"));
  EXPECT_EQ(bad.allow, "PUT, DELETE");
  EXPECT_TRUE(std::holds_alternative<route_bad_path>(r.match("GET", "/v1/speakers/%zz")));
  EXPECT_TRUE(std::holds_alternative<route_bad_path>(r.match("GET", "/v1/speakers/%4")));
  // literal segments are not matched through their encoding
  EXPECT_TRUE(std::holds_alternative<route_not_found>(r.match("GET", "/%76%31/speakers")));
}

TEST(Router, HeadIsServedWhereverGetIs) {
  auto r = make_router();
  auto m = std::get<route_match>(r.match("HEAD", "/v1/speakers/dr-smith"));
  EXPECT_EQ(m.route, 3);
  EXPECT_EQ(m.params[0], "dr-smith");
  EXPECT_EQ(std::get<route_match>(r.match("HEAD", "/v1/speakers")).route, 1);
  // no GET here, so no HEAD either
  auto bad = std::get<route_bad_method>(r.match("HEAD", "/v1/speakers/x/bucket-pin"));
  EXPECT_EQ(bad.allow, "PUT, DELETE");
  // where GET is allowed, HEAD is listed beside it, once
  bad = std::get<route_bad_method>(r.match("PATCH", "/v1/speakers"));
  EXPECT_EQ(bad.allow, "GET, HEAD, POST");
}

TEST(Router, ParsesQueryStrings) {
  std::vector<std::pair<std::string, std::string>> q;
  ASSERT_TRUE(parse_query("bucket=no_touch&client_id=a%26b&limit=5&flag&x=a+b", q));
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[1].second, "a&b");
  EXPECT_EQ(q[3].first, "flag");
  EXPECT_EQ(q[3].second, "");
  EXPECT_EQ(q[4].second, "a b");
  EXPECT_FALSE(parse_query("a=%G0", q));
}
