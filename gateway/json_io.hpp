#pragma once
// JSON in and out of the gateway: strict body parsing (depth, UTF-8, types), field readers that name
// the offending field, problem+json responses, and the one mapping from SBM errors to HTTP statuses.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/responder.hpp"
#include "messages/http.hpp"
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
// 409, key_reused/poison 422, overloaded/deadline_exceeded/unavailable 503 (+ Retry-After, from the
// error's typed retry_after when it has one), anything else 500 with no internals. For a `write`,
// a timeout or a lost answer is 503 outcome-unknown: the client must retry with its key to learn.
http_response from_error(const caf::error& err, bool write = false);

// What a request nobody answered gets (the HTTP server's deadline sweep and a gateway restart):
// for a write the outcome is unknown (retry with the same Idempotency-Key), for a read a 503.
http_response unanswered(bool write, unanswered_cause cause);

using text::valid_utf8;

// An identifier: 1..128 bytes of valid UTF-8 without control characters or '/'.
// Returns the reason when it is not.
std::optional<std::string> id_problem(std::string_view value);

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

// Reads typed fields from a parsed object; the first failure is kept with the field's name.
class field_reader {
 public:
  explicit field_reader(const nlohmann::json& object);
  // Text without control characters (tab and newline allowed when multiline), at most max_bytes.
  bool text(const char* key, std::string& out, bool required, std::size_t max_bytes,
            bool multiline = false);
  bool identifier(const char* key, std::string& out, bool required);
  bool number(const char* key, double& out, bool required, double min, double max);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& field() const { return field_; }
  http_response to_problem() const;

 private:
  bool fail(const char* key, std::string message);
  const nlohmann::json& object_;
  std::string error_;
  std::string field_;
};

}  // namespace sbm::gateway
