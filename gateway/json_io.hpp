#pragma once
// JSON in and out of the gateway: strict body parsing (depth, UTF-8, types), field readers that name
// the offending field, problem+json responses, and the one mapping from SBM errors to HTTP statuses.
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/responder.hpp"
#include "messages/http.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"
#include "runtime/text/utf8.hpp"

namespace caf {
class error;
}

namespace sbm::gateway {

http_response json_response(std::uint16_t status, const nlohmann::json& body);

// RFC 7807 problem document. `field` names the offending input when there is one.
http_response problem(std::uint16_t status, std::string_view slug, std::string_view title,
                      std::string detail, std::string_view field = {});

// errc -> status: invalid_argument 400, not_found 404, conflict/duplicate/stale_owner/in_progress
// 409, key_reused/poison 422, overloaded/deadline_exceeded/unavailable/moving 503 (+ Retry-After, from the
// error's typed retry_after when it has one), anything else 500 with no internals. For a `write`,
// a timeout or a lost answer is 503 outcome-unknown: the client must retry with its key to learn.
http_response from_error(const caf::error& err, bool write = false);

// What a request nobody answered gets (the HTTP server's deadline sweep and a gateway restart):
// for a write the outcome is unknown (retry with the same Idempotency-Key), for a read a 503.
http_response unanswered(bool write, unanswered_cause cause);

using text::valid_utf8;

// The one id rule (runtime/domain/ids.hpp), for path, query and body ids alike.
using domain::id_problem;

// Parses a JSON object body; on failure returns nullopt and sets `error` to a client-facing reason.
// Strict, so SBM reads a body as any other reader would or not at all: no byte order mark, no
// repeated key in any object (the error names the key), valid UTF-8, at most max_depth levels.
std::optional<nlohmann::json> parse_object(std::string_view body, std::size_t max_depth,
                                           std::string& error);

// A request that carries a body must declare it as JSON (is_json_media_type in
// gateway/request_checks.hpp): 415 when it does not, 400 when it
// declares two types. Nothing when the request has no body. A plain function of the request, so
// it may run on any thread.
std::optional<http_response> media_type_problem(const http_request& req);

// The first key of `object` that is not in `known`, if any: a misspelt field must not be dropped
// silently (a report filed without the metadata QA thought it gave, an account left enabled).
std::optional<std::string> unknown_field(const nlohmann::json& object,
                                         std::initializer_list<const char*> known);

// The one reader of typed fields from a parsed object (gateway/readers.hpp's body_object gives
// the object). The first failure is kept with the field's name, later reads then do nothing.
// `prefix` names a nested object's fields ("filters.").
class field_reader {
 public:
  explicit field_reader(const nlohmann::json& object, std::string prefix = {});
  // Refuses (400 unknown-field) the first key not in `known`.
  bool only(std::initializer_list<const char*> known);
  // The value, or nullptr when absent or null (failing when required).
  const nlohmann::json* find(const char* key, bool required);
  // A JSON string of at most max_bytes, nothing else checked (the family checks its content).
  bool string(const char* key, std::string& out, bool required,
              std::size_t max_bytes = static_cast<std::size_t>(-1));
  // Text without control characters (tab and newline allowed when multiline), at most max_bytes,
  // not empty when required.
  bool text(const char* key, std::string& out, bool required, std::size_t max_bytes,
            bool multiline = false);
  bool identifier(const char* key, std::string& out, bool required);
  // One of a vocabulary's words (runtime/domain/vocabulary.hpp).
  template <std::size_t N>
  bool choice(const char* key, std::string& out, bool required,
              const std::array<std::string_view, N>& words) {
    std::string value;
    if (!string(key, value, required))
      return false;
    if (!value.empty() && !domain::is_one_of(words, value))
      return fail(key, "must be one of " + domain::choices_text(words));
    out = std::move(value);
    return true;
  }
  bool number(const char* key, double& out, bool required, double min, double max);
  // JSON numbers with no fractional part (3 and 3.0 alike), within [min, max].
  bool integer(const char* key, std::int64_t& out, bool required, std::int64_t min, std::int64_t max);
  // An RFC 3339 timestamp or a date, as a string (gateway/timestamps.hpp), the same as in a query.
  bool timestamp(const char* key, std::optional<std::int64_t>& out, bool required);
  bool boolean(const char* key, bool& out, bool required);
  bool optional_boolean(const char* key, std::optional<bool>& out);
  bool strings(const char* key, std::vector<std::string>& out, bool required, std::size_t max_items);
  bool fail(const char* key, std::string message);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& field() const { return field_; }
  http_response to_problem() const;

 private:
  const nlohmann::json& object_;
  std::string prefix_;
  std::string slug_ = "invalid-field";
  std::string error_;
  std::string field_;
};

}  // namespace sbm::gateway
