#pragma once
// Internal to gateway/: the one way a route reads its input.
// - query_reader: the query string, decoded once. A name not listed, or a name given twice, is
//   refused; the first problem answers 400 naming the parameter, and `ok` turns false so the
//   handler returns without answering again. A name given with an empty value is refused as
//   well, so "" below always means absent.
// - body_object: the JSON body, parsed strictly (gateway/json_io.hpp parse_object), holding only
//   the listed fields; its fields are then read with field_reader.
// Ids follow runtime/domain/ids.hpp and timestamps gateway/timestamps.hpp (RFC 3339) everywhere.
#include <nlohmann/json_fwd.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/http.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::gateway {

struct gateway_context;

class query_reader {
 public:
  query_reader(const gateway_context& c, const http_request& r,
               std::initializer_list<const char*> allowed);

  // What the constructor checks, alone: nullopt, or the 400 naming the first parameter refused
  // (undecodable, not `allowed`, repeated or empty), with the decoded pairs in `pairs`. For the
  // routes that read no query (allowed empty), where no handler builds a reader.
  static std::optional<http_response> refusal(std::string_view query,
                                              std::initializer_list<const char*> allowed,
                                              std::vector<std::pair<std::string, std::string>>& pairs);

  bool ok = true;

  void fail(const std::string& name, const std::string& why);
  bool has(const char* name) const { return !get(name).empty(); }
  // The decoded value, unchecked; "" when absent.
  std::string get(const char* name) const;
  // Valid UTF-8 of at most max_bytes without control characters.
  std::string text(const char* name, std::size_t max_bytes);
  // Absent: ""; present: a valid id.
  std::string identifier(const char* name);
  // Absent: ""; present: one of `words`.
  template <std::size_t N>
  std::string choice(const char* name, const std::array<std::string_view, N>& words) {
    auto v = get(name);
    if (!v.empty() && !domain::is_one_of(words, v))
      fail(name, "must be one of " + domain::choices_text(words));
    return v;
  }
  // Absent: {}; present: a comma-separated list of `words`, each kept once, in the order given.
  template <std::size_t N>
  std::vector<std::string> choices(const char* name, const std::array<std::string_view, N>& words) {
    std::vector<std::string> out;
    const auto text = get(name);
    std::size_t start = 0;
    while (!text.empty()) {
      const auto comma = text.find(',', start);
      auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!domain::is_one_of(words, item)) {
        fail(name, "must be a comma-separated list of " + domain::choices_text(words));
        return {};
      }
      if (std::find(out.begin(), out.end(), item) == out.end())
        out.push_back(std::move(item));
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    return out;
  }
  // Absent: fallback; present: an integer from 1 to max.
  std::uint32_t limit(const char* name, std::uint32_t fallback, std::uint32_t max);
  // Absent: 0; present: a cursor this API handed out (a positive integer).
  std::int64_t cursor(const char* name);
  // Absent: nullopt; present: an RFC 3339 timestamp or a date (gateway/timestamps.hpp).
  std::optional<std::int64_t> timestamp(const char* name);

 private:
  const gateway_context& ctx_;
  const http_request& req_;
  std::vector<std::pair<std::string, std::string>> pairs_;
};

// The body as a JSON object holding only the `known` fields: nullopt (and a 400 sent, naming the
// field when one is unknown) otherwise.
std::optional<nlohmann::json> body_object(const gateway_context& ctx, const http_request& req,
                                          std::initializer_list<const char*> known);

// A path segment that must be an id (runtime/domain/ids.hpp): false, and a 400 naming `field`
// ("speaker id must not be empty"), when it is not.
bool path_id_ok(const gateway_context& ctx, const http_request& req, const std::string& value,
                const char* what, const char* field);

// A path segment that must be a numeric id (an error report's): nullopt, and a 400 naming
// `field`, when it is not.
std::optional<std::int64_t> path_number(const gateway_context& ctx, const http_request& req,
                                        const std::string& value, const char* what,
                                        const char* field);

}  // namespace sbm::gateway
