// The Idempotency-Key header: what a key may be, and the digest that binds it to one request.
#include <gtest/gtest.h>

#include <string>

#include "gateway/idempotency_key.hpp"

using sbm::gateway::parse_idempotency_key;
using sbm::gateway::request_digest;

TEST(IdempotencyKey, TokensAndQuotedStringsAreKeys) {
  std::string why;
  EXPECT_EQ(parse_idempotency_key("8e03978e-40d5-43e8-bc93-6894a57f9324", why),
            "8e03978e-40d5-43e8-bc93-6894a57f9324");
  // The draft's structured-field form is a quoted string: the quotes are not part of the key.
  EXPECT_EQ(parse_idempotency_key("\"abc-1\"", why), "abc-1");
  EXPECT_EQ(parse_idempotency_key(std::string(255, 'k'), why), std::string(255, 'k'));
}

TEST(IdempotencyKey, EmptyLongAndNonAsciiKeysAreRefusedWithAReason) {
  for (const std::string& bad : {std::string{}, std::string{"\"\""}, std::string(256, 'k'),
                                std::string{"has space"}, std::string{"tab\there"},
                                std::string{"caf\xc3\xa9"}, std::string{"quo\"te"},
                                std::string{"back\\slash"}, std::string{"nul\0x", 5}}) {
    std::string why;
    EXPECT_FALSE(parse_idempotency_key(bad, why)) << bad;
    EXPECT_NE(why.find("Idempotency-Key"), std::string::npos) << bad;
  }
}

TEST(IdempotencyKey, TheDigestSeparatesEveryPartOfTheRequest) {
  const auto base = request_digest("POST", "/v1/speakers", "", R"({"speaker_id":"a"})");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, request_digest("POST", "/v1/speakers", "", R"({"speaker_id":"a"})"));
  EXPECT_NE(base, request_digest("PUT", "/v1/speakers", "", R"({"speaker_id":"a"})"));
  EXPECT_NE(base, request_digest("POST", "/v1/speakers/a", "", R"({"speaker_id":"a"})"));
  EXPECT_NE(base, request_digest("POST", "/v1/speakers", "x=1", R"({"speaker_id":"a"})"));
  EXPECT_NE(base, request_digest("POST", "/v1/speakers", "", R"({"speaker_id":"b"})"));
  // Moving bytes from one part to the next makes another digest (each part is length-prefixed).
  EXPECT_NE(request_digest("POST", "/a", "b", ""), request_digest("POST", "/ab", "", ""));
}
