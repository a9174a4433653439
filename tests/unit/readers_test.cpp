// The one query reader, the one body reader and the one id rule of the gateway: what each refuses
// and how the refusal names the input. No actor runs: the readers answer through a responder.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

using namespace sbm::gateway;
using nlohmann::json;

namespace {

struct recorder : responder {
  std::vector<sbm::http_response> answers;
  void respond(std::uint64_t, sbm::http_response r) override { answers.push_back(std::move(r)); }
  void hand_over(std::uint64_t, std::uint64_t, int) override {}
  void respond_routed(std::uint64_t id, int, sbm::http_response r) override { respond(id, std::move(r)); }
  void fail_owned(std::uint64_t) override {}
};

struct readers : ::testing::Test {
  std::shared_ptr<recorder> out = std::make_shared<recorder>();
  gateway_context ctx{nullptr, [this] {
                        gateway_settings s;
                        s.out = out;
                        return s;
                      }()};

  static sbm::http_request query(std::string q) {
    sbm::http_request req;
    req.method = "GET";
    req.query = std::move(q);
    return req;
  }

  static sbm::http_request body(std::string b) {
    sbm::http_request req;
    req.method = "POST";
    req.body = std::move(b);
    return req;
  }

  // The one answer sent, as JSON (fails the test when there is not exactly one).
  json answer(std::uint16_t status) {
    EXPECT_EQ(out->answers.size(), 1u);
    if (out->answers.size() != 1)
      return json::object();
    EXPECT_EQ(out->answers[0].status, status) << out->answers[0].body;
    EXPECT_EQ(out->answers[0].content_type(), "application/problem+json");
    return json::parse(out->answers[0].body);
  }
};

}  // namespace

TEST_F(readers, ValidQueryReadsEveryKindWithoutAnswering) {
  auto req = query("bucket=low_touch&limit=20&cursor=41&from=2026-11-24&to=2026-11-24T10:15:00Z&id=sp%2D1");
  query_reader q{ctx, req, {"bucket", "limit", "cursor", "from", "to", "id"}};
  EXPECT_EQ(q.choice("bucket", sbm::domain::bucket_names), "low_touch");
  EXPECT_EQ(q.limit("limit", 50, 500), 20u);
  EXPECT_EQ(q.cursor("cursor"), 41);
  EXPECT_EQ(q.timestamp("from"), 1795478400000);
  EXPECT_EQ(q.timestamp("to"), 1795515300000);
  EXPECT_EQ(q.identifier("id"), "sp-1");
  EXPECT_TRUE(q.ok);
  EXPECT_TRUE(out->answers.empty());
}

TEST_F(readers, AbsentParametersTakeTheirDefaults) {
  auto req = query("");
  query_reader q{ctx, req, {"limit", "from", "cursor"}};
  EXPECT_EQ(q.limit("limit", 50, 500), 50u);
  EXPECT_FALSE(q.timestamp("from"));
  EXPECT_EQ(q.cursor("cursor"), 0);
  EXPECT_TRUE(q.ok);
}

TEST_F(readers, ADuplicatedParameterIsRefusedNamingIt) {
  auto req = query("limit=5&bucket=no_touch&limit=500");
  query_reader q{ctx, req, {"limit", "bucket"}};
  EXPECT_FALSE(q.ok);
  auto problem = answer(400);
  EXPECT_EQ(problem["field"], "limit");
  EXPECT_NE(problem["detail"].get<std::string>().find("more than once"), std::string::npos) << problem;
}

TEST_F(readers, ADuplicateWrittenTwoWaysIsStillADuplicate) {
  auto req = query("from=2026-01-01&%66rom=2026-02-01");
  query_reader q{ctx, req, {"from"}};
  EXPECT_FALSE(q.ok);
  EXPECT_EQ(answer(400)["field"], "from");
}

TEST_F(readers, AnUnknownParameterIsRefusedNamingIt) {
  auto req = query("limt=5");
  query_reader q{ctx, req, {"limit"}};
  EXPECT_FALSE(q.ok);
  auto problem = answer(400);
  EXPECT_EQ(problem["field"], "limt");
  EXPECT_EQ(problem["type"], "urn:sbm:problem:invalid-query");
}

TEST_F(readers, ARouteThatReadsNoQueryRefusesEveryParameterNamingTheFirst) {
  std::vector<std::pair<std::string, std::string>> pairs;
  EXPECT_FALSE(query_reader::refusal("", {}, pairs));
  auto refused = query_reader::refusal("verbose=1&pretty=1", {}, pairs);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  auto problem = json::parse(refused->body);
  EXPECT_EQ(problem["type"], "urn:sbm:problem:invalid-query");
  EXPECT_EQ(problem["field"], "verbose");
  EXPECT_NE(problem["detail"].get<std::string>().find("is not a known query parameter"), std::string::npos);
  EXPECT_EQ(json::parse(query_reader::refusal("%zz", {}, pairs)->body)["type"], "urn:sbm:problem:bad-query");
  // The answer is the constructor's, word for word.
  auto req = query("verbose=1&pretty=1");
  query_reader q{ctx, req, {}};
  EXPECT_FALSE(q.ok);
  EXPECT_EQ(answer(400), problem);
}

TEST_F(readers, BadPercentEncodingIsRefused) {
  auto req = query("limit=%zz");
  query_reader q{ctx, req, {"limit"}};
  EXPECT_FALSE(q.ok);
  EXPECT_EQ(answer(400)["type"], "urn:sbm:problem:bad-query");
}

TEST_F(readers, ABadTimestampIsRefusedAndOnlyTheFirstProblemAnswers) {
  auto req = query("from=2026-02-30&limit=0");
  query_reader q{ctx, req, {"from", "limit"}};
  EXPECT_FALSE(q.timestamp("from"));
  q.limit("limit", 50, 500);  // also bad, but the client gets one answer
  EXPECT_FALSE(q.ok);
  auto problem = answer(400);
  EXPECT_EQ(problem["field"], "from");
  EXPECT_NE(problem["detail"].get<std::string>().find("RFC 3339"), std::string::npos) << problem;
}

TEST_F(readers, BadQueryValuesNameTheParameter) {
  for (auto [text, field] : std::vector<std::pair<std::string, std::string>>{
         {"bucket=No_Touch", "bucket"},
         {"limit=501", "limit"},
         {"limit=-1", "limit"},
         {"cursor=abc", "cursor"},
         {"id=a%2Fb", "id"},
         {"id=a%01b", "id"},
         {"reason=line%0Abreak", "reason"}}) {
    out->answers.clear();
    auto req = query(text);
    query_reader q{ctx, req, {"bucket", "limit", "cursor", "id", "reason"}};
    q.choice("bucket", sbm::domain::bucket_names);
    q.limit("limit", 50, 500);
    q.cursor("cursor");
    q.identifier("id");
    q.text("reason", 1024);
    EXPECT_FALSE(q.ok) << text;
    EXPECT_EQ(answer(400)["field"], field) << text;
  }
}

TEST_F(readers, ABodyWithOnlyKnownFieldsIsRead) {
  auto req = body(R"({"speaker_id":"sp-1","bucket":"no_touch"})");
  auto object = body_object(ctx, req, {"speaker_id", "bucket", "reason"});
  ASSERT_TRUE(object);
  EXPECT_EQ((*object)["bucket"], "no_touch");
  EXPECT_TRUE(out->answers.empty());
}

TEST_F(readers, AnUnknownBodyFieldIsRefusedNamingIt) {
  auto req = body(R"({"speaker_id":"sp-1","disabeld":true})");
  EXPECT_FALSE(body_object(ctx, req, {"speaker_id", "disabled"}));
  auto problem = answer(400);
  EXPECT_EQ(problem["type"], "urn:sbm:problem:unknown-field");
  EXPECT_EQ(problem["field"], "disabeld");
  EXPECT_NE(problem["detail"].get<std::string>().find("'disabeld'"), std::string::npos) << problem;
}

TEST_F(readers, AMalformedBodyIsRefused) {
  auto req = body(R"({"a":1,"a":2})");
  EXPECT_FALSE(body_object(ctx, req, {"a"}));
  EXPECT_EQ(answer(400)["type"], "urn:sbm:problem:malformed-body");
}

TEST_F(readers, ANestedObjectNamesItsFieldsWithTheirPath) {
  auto object = json::parse(R"({"filters":{"bucket_type":"some_touch"}})");
  field_reader f{object["filters"], "filters."};
  EXPECT_TRUE(f.only({"bucket_type"}));
  std::string bucket;
  f.choice("bucket_type", bucket, false, sbm::domain::bucket_names);
  ASSERT_TRUE(f.failed());
  EXPECT_EQ(f.field(), "filters.bucket_type");
  EXPECT_NE(f.error().find("no_touch, low_touch, medium_touch or high_touch"), std::string::npos)
    << f.error();
}

TEST_F(readers, ABadPathIdIsRefusedNamingTheField) {
  auto req = query("");
  EXPECT_TRUE(path_id_ok(ctx, req, "sp-1", "speaker id", "speaker_id"));
  EXPECT_FALSE(path_id_ok(ctx, req, std::string(129, 'x'), "speaker id", "speaker_id"));
  EXPECT_EQ(answer(400)["field"], "speaker_id");
  out->answers.clear();
  EXPECT_FALSE(path_number(ctx, req, "12a", "the report id", "id"));
  EXPECT_EQ(answer(400)["field"], "id");
}

TEST(DomainIds, OneRuleForEveryId) {
  EXPECT_FALSE(sbm::domain::id_problem("sp-1"));
  EXPECT_FALSE(sbm::domain::id_problem(std::string(128, 'x')));
  EXPECT_FALSE(sbm::domain::id_problem("Dr. M\xC3\xBCller"));
  for (std::string bad : {std::string{}, std::string(129, 'x'), std::string{"a/b"},
                          std::string{"a\tb"}, std::string{"a\x7f"}, std::string{"\xC3"}})
    EXPECT_TRUE(sbm::domain::id_problem(bad)) << bad;
}

TEST(DomainIds, PositiveIntegersOnly) {
  EXPECT_EQ(sbm::domain::positive_integer("1"), 1);
  EXPECT_EQ(sbm::domain::positive_integer("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1.0", "9223372036854775808", "0x10"})
    EXPECT_FALSE(sbm::domain::positive_integer(bad)) << bad;
}

TEST_F(readers, AnEmptyValueIsRefusedRatherThanReadAsAbsent) {
  auto req = query("actor=");
  query_reader q{ctx, req, {"actor"}};
  EXPECT_FALSE(q.ok);
  EXPECT_EQ(answer(400)["field"], "actor");
}

TEST_F(readers, ABodyTimestampIsTheSameRfc3339TextAsAQueryOne) {
  auto object = json::parse(R"({"from":"2026-11-24T11:15:00+01:00","to":1795515300000,"at":"2026-02-30"})");
  field_reader f{object};
  std::optional<std::int64_t> from, to, at;
  EXPECT_TRUE(f.timestamp("from", from, true));
  EXPECT_EQ(from, 1795515300000);
  EXPECT_FALSE(f.timestamp("to", to, true));  // a number is not a timestamp here
  EXPECT_EQ(f.field(), "to");
  field_reader g{object};
  EXPECT_FALSE(g.timestamp("at", at, true));
  EXPECT_EQ(g.field(), "at");
  EXPECT_NE(g.error().find("RFC 3339"), std::string::npos) << g.error();
}

TEST_F(readers, AListOfWordsIsReadOnceEachFromItsTable) {
  auto req = query("kinds=dosage,homophone,dosage");
  query_reader q{ctx, req, {"kinds"}};
  EXPECT_EQ(q.choices("kinds", sbm::domain::error_categories),
            (std::vector<std::string>{"dosage", "homophone"}));
  EXPECT_TRUE(q.ok);
  EXPECT_TRUE(out->answers.empty());
}

TEST_F(readers, AListWithOneWordOutsideItsTableIsRefusedNamingTheParameter) {
  for (std::string text : {"kinds=dosage,not_a_category", "kinds=dosage,", "kinds=Dosage"}) {
    out->answers.clear();
    auto req = query(text);
    query_reader q{ctx, req, {"kinds"}};
    EXPECT_TRUE(q.choices("kinds", sbm::domain::error_categories).empty()) << text;
    EXPECT_FALSE(q.ok) << text;
    EXPECT_EQ(answer(400)["field"], "kinds") << text;
  }
}
