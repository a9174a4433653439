// gateway/openapi.json against the code it describes: every route of the route table with its
// method, path template and permission, and nothing else; the vocabulary's enumerations; every
// problem type the gateway can answer, and none it cannot. Each failure says what to add or remove
// where, so adding a route to the document is a matter of following the message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/openapi.hpp"
#include "gateway/route_table.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace {

using nlohmann::json;
namespace gw = sbm::gateway;

const std::array<const char*, 8> http_methods{"get", "put", "post", "delete", "patch", "head", "options", "trace"};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct OpenApi : ::testing::Test {
  json doc = json::parse(gw::openapi_document());

  const json* operation(const std::string& path, const std::string& method) const {
    const auto& paths = doc.at("paths");
    auto p = paths.find(path);
    if (p == paths.end()) return nullptr;
    auto o = p->find(method);
    return o == p->end() ? nullptr : &*o;
  }

  const json& schema(const char* name) const { return doc.at("/components/schemas"_json_pointer).at(name); }
};

TEST_F(OpenApi, ServesTheFileInTheRepository) {
  EXPECT_EQ(gw::openapi_document(), read_file(std::filesystem::path{SBM_SOURCE_DIR} / "gateway/openapi.json"));
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
}

TEST_F(OpenApi, EveryRouteIsDocumentedWithItsPermission) {
  for (const auto& r : gw::all_routes()) {
    const auto method = lower(r.method);
    const auto* op = operation(r.pattern, method);
    const std::string permission{r.permission};
    ASSERT_NE(op, nullptr) << "route " << r.method << " " << r.pattern
                           << " (gateway/route_table.cpp) is missing from gateway/openapi.json: add \"paths\": {\""
                           << r.pattern << "\": {\"" << method << "\": {...}}} with "
                           << (permission.empty() ? "\"security\": []"
                                                  : "\"x-sbm-permission\": \"" + permission + "\"");
    if (permission.empty()) {
      EXPECT_EQ(op->value("security", json{}), json::array())
        << r.method << " " << r.pattern << " needs no token: its operation must say \"security\": []";
      EXPECT_FALSE(op->contains("x-sbm-permission"))
        << r.method << " " << r.pattern << " needs no permission: remove its \"x-sbm-permission\"";
    } else {
      EXPECT_EQ(op->value("x-sbm-permission", json{}), permission)
        << r.method << " " << r.pattern << " needs permission " << permission
        << ": set its operation's \"x-sbm-permission\": \"" << permission << "\"";
      EXPECT_FALSE(op->contains("security"))
        << r.method << " " << r.pattern << " takes the document's bearer security: remove its \"security\"";
    }
  }
}

TEST_F(OpenApi, EveryDocumentedOperationIsARoute) {
  for (const auto& [path, item] : doc.at("paths").items())
    for (auto method : http_methods) {
      if (!item.contains(method)) continue;
      const bool routed = std::any_of(gw::all_routes().begin(), gw::all_routes().end(), [&](const auto& r) {
        return lower(r.method) == method && path == r.pattern;
      });
      EXPECT_TRUE(routed) << "gateway/openapi.json documents " << method << " " << path
                          << ", which gateway/route_table.cpp does not route: remove it from the document "
                             "or add the route (HEAD is implied by every GET and not documented)";
    }
}

template <std::size_t N>
void expect_enum(const json& schema, const std::array<std::string_view, N>& words, const char* name) {
  std::vector<std::string> expected(words.begin(), words.end());
  EXPECT_EQ(schema.at("enum").get<std::vector<std::string>>(), expected)
    << "components.schemas." << name << ".enum must list runtime/domain/vocabulary.hpp's words in its order";
}

TEST_F(OpenApi, EnumerationsAreTheVocabulary) {
  namespace d = sbm::domain;
  expect_enum(schema("Bucket"), d::bucket_names, "Bucket");
  expect_enum(schema("Role"), d::user_roles, "Role");
  expect_enum(schema("SchedulePriority"), d::schedule_priorities, "SchedulePriority");
  expect_enum(schema("ErrorCategory"), d::error_categories, "ErrorCategory");
  expect_enum(schema("AudioQuality"), d::audio_qualities, "AudioQuality");
  expect_enum(schema("SpeakerClarity"), d::speaker_clarities, "SpeakerClarity");
  expect_enum(schema("BackgroundNoise"), d::background_noises, "BackgroundNoise");
  expect_enum(schema("ReportStatus"), d::report_statuses, "ReportStatus");
  expect_enum(schema("Verdict"), d::verdicts, "Verdict");
}

// The problem types the gateway's source can answer: problem(NNN, "slug", ...), the field
// reader's slugs, literal urn:sbm:problem:... bodies and the HTTP server's own problem_slug().
std::set<std::string> problem_types_in_source() {
  const std::array<std::regex, 3> patterns{
    std::regex{R"re(problem\(\s*\d{3}\s*,\s*"([a-z0-9-]+)")re"},
    std::regex{R"re(urn:sbm:problem:([a-z0-9-]+))re"},
    std::regex{R"re(slug_\s*=\s*"([a-z0-9-]+)")re"},
  };
  std::set<std::string> out;
  const auto dir = std::filesystem::path{SBM_SOURCE_DIR} / "gateway";
  for (const auto& entry : std::filesystem::recursive_directory_iterator{dir}) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".hpp") continue;
    auto text = read_file(entry.path());
    for (const auto& re : patterns)
      for (std::sregex_iterator it{text.begin(), text.end(), re}, end; it != end; ++it)
        out.insert((*it)[1]);
    const auto slug_fn = text.find("const char* problem_slug(");
    if (slug_fn == std::string::npos) continue;
    const auto body = text.substr(slug_fn, text.find("\n}\n", slug_fn) - slug_fn);
    const std::regex returned{R"re(return\s+"([a-z0-9-]+)")re"};
    for (std::sregex_iterator it{body.begin(), body.end(), returned}, end; it != end; ++it)
      out.insert((*it)[1]);
  }
  return out;
}

TEST_F(OpenApi, ProblemTypesAreThoseTheGatewayAnswers) {
  std::set<std::string> documented;
  for (const auto& t : schema("Problem").at("/properties/type/anyOf"_json_pointer)) {
    const auto urn = t.at("const").get<std::string>();
    ASSERT_EQ(urn.rfind("urn:sbm:problem:", 0), 0u) << urn;
    EXPECT_TRUE(t.contains("description")) << urn << " needs a description (its status and meaning)";
    documented.insert(urn.substr(16));
  }
  const auto in_source = problem_types_in_source();
  ASSERT_GT(in_source.size(), 20u) << "the scan of gateway/ found too few problem types: has the source moved?";
  for (const auto& slug : in_source)
    EXPECT_TRUE(documented.count(slug))
      << "the gateway answers urn:sbm:problem:" << slug
      << ", which gateway/openapi.json does not list: add {\"const\": \"urn:sbm:problem:" << slug
      << "\", \"description\": \"<status>: <when>\"} to components.schemas.Problem.properties.type.anyOf";
  for (const auto& slug : documented)
    EXPECT_TRUE(in_source.count(slug)) << "gateway/openapi.json lists urn:sbm:problem:" << slug
                                       << ", which no code in gateway/ answers: remove it";
}

}  // namespace
