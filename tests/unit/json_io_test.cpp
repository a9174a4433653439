#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway/json_io.hpp"

using namespace sbm::gateway;

namespace {

std::string refusal(std::string_view body) {
  std::string error;
  auto value = parse_object(body, 32, error);
  EXPECT_FALSE(value) << body;
  return error;
}

sbm::http_request with_body(std::string body, std::vector<std::string> content_types) {
  sbm::http_request req;
  req.method = "POST";
  req.body = std::move(body);
  for (auto& c : content_types)
    req.headers.emplace_back("content-type", std::move(c));
  return req;
}

}  // namespace

TEST(JsonIo, ReadsAPlainObject) {
  std::string error;
  auto value = parse_object(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})", 32, error);
  ASSERT_TRUE(value) << error;
  EXPECT_EQ((*value)["b"]["x"], 2);
}

TEST(JsonIo, RefusesDuplicateKeysNamingThem) {
  auto error = refusal(R"({"speaker_id":"a","speaker_id":"b"})");
  EXPECT_NE(error.find("duplicate key 'speaker_id'"), std::string::npos) << error;
  // the same key written two ways is the same key
  error = refusal(R"({"a":1,"\u0061":2})");
  EXPECT_NE(error.find("duplicate key 'a'"), std::string::npos) << error;
  // inside a nested object, and inside an object in an array
  error = refusal(R"({"filters":{"speaker_id":"a","speaker_id":"b"}})");
  EXPECT_NE(error.find("'speaker_id'"), std::string::npos) << error;
  error = refusal(R"({"items":[{"k":1},{"k":1,"k":2}]})");
  EXPECT_NE(error.find("'k'"), std::string::npos) << error;
  // a long key is named by a prefix
  std::string key(300, 'k');
  error = refusal("{\"" + key + "\":1,\"" + key + "\":2}");
  EXPECT_LT(error.size(), 120u);
}

TEST(JsonIo, RefusesAByteOrderMark) {
  auto error = refusal("\xEF\xBB\xBF{}");
  EXPECT_NE(error.find("byte order mark"), std::string::npos) << error;
}

TEST(JsonIo, StillRefusesDepthAndBadUtf8) {
  EXPECT_NE(refusal(std::string(40, '[') + std::string(40, ']')).find("deeper"), std::string::npos);
  EXPECT_NE(refusal("{\"a\":\"\xff\"}").find("UTF-8"), std::string::npos);
}

TEST(JsonIo, ABodyMustBeDeclaredAsJson) {
  EXPECT_FALSE(media_type_problem(with_body("{}", {"application/json"})));
  EXPECT_FALSE(media_type_problem(with_body("", {})));  // no body, nothing to declare
  auto r = media_type_problem(with_body("{}", {}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  r = media_type_problem(with_body("{}", {"text/plain"}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  EXPECT_EQ(r->content_type(), "application/problem+json");
  r = media_type_problem(with_body("{}", {"application/json", "text/plain"}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}
