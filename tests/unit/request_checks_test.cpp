#include <gtest/gtest.h>

#include "gateway/request_checks.hpp"

using namespace sbm::gateway;

namespace {
using headers = std::vector<std::pair<std::string, std::string>>;
const headers with_host{{"host", "sbm.example"}, {"authorization", "Bearer t"}};
}  // namespace

TEST(RequestChecks, AWellFramedRequestPasses) {
  EXPECT_FALSE(framing_problem(1, 1, with_host));
  EXPECT_FALSE(framing_problem(1, 0, {}));  // HTTP/1.0 has no Host requirement
}

TEST(RequestChecks, ARequestWithoutAVersionIsRefused) {
  auto why = framing_problem(0, 9, with_host);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("no HTTP version"), std::string::npos);
  EXPECT_TRUE(framing_problem(2, 0, with_host));
  EXPECT_TRUE(framing_problem(1, 2, with_host));
}

TEST(RequestChecks, Http11NeedsExactlyOneHost) {
  auto why = framing_problem(1, 1, {{"authorization", "Bearer t"}});
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("Host"), std::string::npos);
  EXPECT_TRUE(framing_problem(1, 1, {{"host", "a"}, {"host", "b"}}));
  EXPECT_TRUE(framing_problem(1, 0, {{"host", "a"}, {"host", "b"}}));
}

TEST(RequestChecks, RepeatedAuthorizationAndBodyHeadersAreRefused) {
  auto why = framing_problem(1, 1, {{"host", "a"}, {"authorization", "Bearer x"}, {"authorization", "Bearer y"}});
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("authorization"), std::string::npos);
  EXPECT_TRUE(framing_problem(1, 1, {{"host", "a"}, {"content-type", "application/json"},
                                     {"content-type", "text/plain"}}));
  // other headers may repeat
  EXPECT_FALSE(framing_problem(1, 1, {{"host", "a"}, {"accept", "a"}, {"accept", "b"}}));
}

TEST(RequestChecks, JsonMediaTypes) {
  for (auto ok : {"application/json", "Application/JSON", "application/json; charset=utf-8",
                  "application/json;charset=UTF-8", "application/json; charset=\"utf-8\""})
    EXPECT_TRUE(is_json_media_type(ok)) << ok;
  for (auto bad : {"", "text/plain", "application/json-patch+json", "application/jsonx",
                   "application/json; charset=latin1", "application/json; boundary=x",
                   "text/json", "application/x-www-form-urlencoded", "application/json;"})
    EXPECT_FALSE(is_json_media_type(bad)) << bad;
}

TEST(RequestChecks, ForwardedForCountsOnlyFromTrustedProxies) {
  const std::set<std::string, std::less<>> trusted{"10.0.0.9", "10.0.0.8"};
  // an untrusted peer cannot name another address
  EXPECT_EQ(client_address("203.0.113.5", {{"x-forwarded-for", "198.51.100.1"}}, trusted), "203.0.113.5");
  // the proxy's own entry (rightmost) is the client; what the client wrote left of it is ignored
  EXPECT_EQ(client_address("10.0.0.9", {{"x-forwarded-for", "1.2.3.4, 198.51.100.1"}}, trusted),
            "198.51.100.1");
  // a chain of trusted proxies is walked from the right
  EXPECT_EQ(client_address("10.0.0.9", {{"x-forwarded-for", "1.2.3.4, 198.51.100.1, 10.0.0.8"}}, trusted),
            "198.51.100.1");
  // several headers are one list, in order
  EXPECT_EQ(client_address("10.0.0.9", {{"x-forwarded-for", "1.2.3.4"}, {"x-forwarded-for", "198.51.100.2"}},
                           trusted),
            "198.51.100.2");
  // garbage stops the walk at the last trusted hop
  EXPECT_EQ(client_address("10.0.0.9", {{"x-forwarded-for", "not-an-ip"}}, trusted), "10.0.0.9");
  EXPECT_EQ(client_address("10.0.0.9", {}, trusted), "10.0.0.9");
  EXPECT_EQ(client_address("10.0.0.9", {{"x-forwarded-for", "2001:DB8::1"}}, trusted), "2001:db8::1");
}

TEST(RequestChecks, CanonicalIp) {
  EXPECT_EQ(canonical_ip("127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(canonical_ip("::1"), "::1");
  EXPECT_FALSE(canonical_ip("127.0.0.256"));
  EXPECT_FALSE(canonical_ip("localhost"));
  EXPECT_FALSE(canonical_ip(""));
}
