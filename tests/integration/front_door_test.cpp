// The front door on its own (no actors, no sockets): what it answers itself, what it leaves to a
// lane, and that a token's signature is checked once while the token lives.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ctime>

#include "gateway/auth/jwt.hpp"
#include "gateway/front_door.hpp"
#include "gateway/route_table.hpp"

using namespace sbm;
using namespace std::chrono_literals;

namespace {

const auth::jwt_key key{"k", "HS256", std::string(32, 's')};

std::string token_for(const std::string& subject, std::int64_t lifetime = 600) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  nlohmann::json claims{{"sub", subject}, {"role", "qa"}, {"iat", now}, {"exp", now + lifetime}};
  return auth::jwt_sign(key, claims.dump());
}

gateway::front_door door(double rate = 0) {
  gateway::front_door_settings s;
  s.verifier = std::make_shared<auth::jwt_verifier>(std::vector<auth::jwt_key>{key},
                                                    auth::jwt_rules{"", "", 30s, 24h});
  s.rate_limit.rate = rate;
  s.rate_limit.burst = 2;
  return gateway::front_door{s};
}

http_request request(std::string method, std::string path, const std::string& token = {}) {
  http_request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.peer = "10.0.0.1";
  if (!token.empty())
    r.headers.emplace_back("authorization", "Bearer " + token);
  return r;
}

}  // namespace

TEST(FrontDoor, AnswersWhatNeedsNoActor) {
  auto d = door();
  auto health = request("GET", "/healthz");
  ASSERT_TRUE(d.admit(health));
  auto unknown = request("GET", "/v1/nope");
  EXPECT_EQ(d.admit(unknown)->status, 404);
  auto wrong = request("PUT", "/v1/speakers");
  auto answer = d.admit(wrong);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 405);
  auto bad_key = request("POST", "/v1/speakers", token_for("a"));
  bad_key.headers.emplace_back("idempotency-key", "");
  EXPECT_EQ(d.admit(bad_key)->status, 400);
  // The routes answered here refuse a query as every route does, naming the parameter.
  for (const char* path : {"/healthz", "/openapi.json"}) {
    auto queried = request("GET", path);
    queried.query = "verbose=1";
    auto refused = d.admit(queried);
    ASSERT_TRUE(refused) << path;
    EXPECT_EQ(refused->status, 400) << path;
    EXPECT_NE(refused->body.find(R"("field":"verbose")"), std::string::npos) << refused->body;
  }
}

TEST(FrontDoor, LeavesTheRestToALaneWithRouteAndVerdict) {
  auto d = door();
  auto r = request("GET", "/v1/speakers/s%2F1", token_for("alice"));
  EXPECT_FALSE(d.admit(r));
  EXPECT_EQ(r.route, static_cast<int>(gateway::route::speaker_get));
  ASSERT_EQ(r.params.size(), 1u);
  EXPECT_EQ(r.params[0], "s/1");
  EXPECT_EQ(r.token.state, token_state::genuine);
  EXPECT_EQ(r.token.subject, "alice");

  auto none = request("GET", "/v1/speakers/s1");
  EXPECT_FALSE(d.admit(none));
  EXPECT_EQ(none.token.state, token_state::absent);

  auto forged = request("GET", "/v1/speakers/s1", token_for("alice") + "x");
  EXPECT_FALSE(d.admit(forged));
  EXPECT_EQ(forged.token.state, token_state::refused);
  EXPECT_FALSE(forged.token.refusal.empty());
}

TEST(FrontDoor, ChecksATokenOnceWhileItLives) {
  auto d = door();
  auto token = token_for("alice");
  for (int i = 0; i < 5; ++i) {
    auto r = request("GET", "/v1/speakers/s1", token);
    EXPECT_FALSE(d.admit(r));
    EXPECT_EQ(r.token.subject, "alice");
  }
  EXPECT_EQ(d.cached_tokens(), 1u);
  auto other = request("GET", "/v1/speakers/s1", token_for("bob"));
  d.admit(other);
  EXPECT_EQ(d.cached_tokens(), 2u);
  auto forged = request("GET", "/v1/speakers/s1", token + "x");
  d.admit(forged);
  EXPECT_EQ(d.cached_tokens(), 2u) << "a refused token is not remembered";
}

TEST(FrontDoor, CountsRatesByPrincipalAndByPeerWithoutAToken) {
  auto d = door(0.001);  // burst 2, next token in ~1000 s
  auto alice = token_for("alice");
  for (int i = 0; i < 2; ++i) {
    auto r = request("GET", "/v1/speakers/s1", alice);
    EXPECT_FALSE(d.admit(r));
  }
  auto third = request("GET", "/v1/speakers/s1", alice);
  auto refused = d.admit(third);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  // Another principal from the same address has its own bucket; the address without a token too.
  auto bob = request("GET", "/v1/speakers/s1", token_for("bob"));
  EXPECT_FALSE(d.admit(bob));
  auto anonymous = request("GET", "/v1/speakers/s1");
  EXPECT_FALSE(d.admit(anonymous));
}

TEST(FrontDoor, ServesTheApiDocumentCountedAgainstThePeer) {
  // Some 200 KB a time for anyone, so it counts against the peer: burst 2, the third is 429.
  auto d = door(0.001);
  for (int i = 0; i < 2; ++i) {
    auto document = request("GET", "/openapi.json");
    auto served = d.admit(document);
    ASSERT_TRUE(served) << "the document needs no token and no lane";
    EXPECT_EQ(served->status, 200);
    EXPECT_EQ(served->content_type(), "application/json");
    EXPECT_EQ(nlohmann::json::parse(served->body).at("openapi"), "3.1.0");
  }
  auto third = request("GET", "/openapi.json");
  const auto refused = d.admit(third);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->content_type(), "application/problem+json");
}
