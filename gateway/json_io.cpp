#include "gateway/json_io.hpp"

#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_set>
#include <vector>

#include "gateway/audit.hpp"
#include "gateway/request_checks.hpp"
#include "gateway/timestamps.hpp"
#include "messages/errors.hpp"
#include "runtime/text/utf8.hpp"

namespace sbm::gateway {

using nlohmann::json;

http_response json_response(std::uint16_t status, const json& body) {
  http_response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

http_response problem(std::uint16_t status, std::string_view slug, std::string_view title,
                      std::string detail, std::string_view field) {
  json body{{"type", "urn:sbm:problem:" + std::string{slug}},
            {"title", std::string{title}},
            {"status", status},
            {"detail", std::move(detail)}};
  if (!field.empty())
    body["field"] = std::string{field};
  auto r = json_response(status, body);
  r.type = media::problem_json;
  return r;
}

namespace {

// Seconds for a Retry-After header: the refusing party's own figure when it gave one (rounded
// up, at least 1), else `fallback`.
std::string retry_after_header(const caf::error& err, int fallback) {
  if (auto ms = retry_after_of(err)) {
    auto seconds = (ms->count() + 999) / 1000;
    return std::to_string(std::max<long long>(1, seconds));
  }
  return std::to_string(fallback);
}

http_response with_retry_after(http_response r, std::string seconds) {
  r.headers.emplace_back("Retry-After", std::move(seconds));
  return r;
}

http_response unknown_outcome() {
  return with_retry_after(
    problem(503, "outcome-unknown", "Service Unavailable",
            "the write may or may not have been saved; retry with the same Idempotency-Key to "
            "learn which (a retry without one may apply it twice)"),
    "1");
}

}  // namespace

http_response unanswered(bool write, unanswered_cause cause) {
  if (write)
    return unknown_outcome();
  if (cause == unanswered_cause::owner_gone)
    return with_retry_after(problem(503, "gateway-restarting", "Service Unavailable",
                                    "the gateway restarted while holding this request; retry"),
                            "1");
  return with_retry_after(problem(503, "timeout", "Service Unavailable",
                                  "the request could not be completed in time"),
                          "5");
}

http_response from_error(const caf::error& err, bool write) {
  if (err.category() == caf::atom("system") &&
      (err == caf::sec::request_timeout || err == caf::sec::request_receiver_down))
    return unanswered(write, unanswered_cause::timed_out);
  auto detail = detail_of(err);
  switch (code_of(err)) {
    case errc::invalid_argument: return problem(400, "invalid-argument", "Bad Request", detail);
    case errc::not_found: return problem(404, "not-found", "Not Found", detail);
    case errc::conflict: return problem(409, "conflict", "Conflict", detail);
    case errc::duplicate: return problem(409, "duplicate", "Conflict", detail);
    case errc::stale_owner: return problem(409, "stale-owner", "Conflict", detail);
    case errc::in_progress:
      return with_retry_after(problem(409, "idempotency-in-progress", "Conflict", detail),
                              retry_after_header(err, 1));
    case errc::key_reused:
      return problem(422, "idempotency-key-reused", "Unprocessable Entity", detail);
    case errc::poison_message:
      return problem(422, "rejected", "Unprocessable Entity", detail);
    case errc::too_large: return problem(413, "too-large", "Payload Too Large", detail);
    case errc::overloaded:
      return with_retry_after(problem(503, "overloaded", "Service Unavailable",
                                      detail.empty() ? "too much work is queued; nothing was saved"
                                                     : detail + "; nothing was saved"),
                              retry_after_header(err, 1));
    case errc::deadline_exceeded:
      return with_retry_after(problem(503, "deadline-exceeded", "Service Unavailable",
                                      "the request waited too long and was dropped unstarted; "
                                      "nothing was saved"),
                              retry_after_header(err, 1));
    case errc::outcome_unknown:
      if (write)
        return unknown_outcome();
      return with_retry_after(problem(503, "unavailable", "Service Unavailable", detail),
                              retry_after_header(err, 5));
    case errc::unavailable:
    case errc::moving:
    case errc::schema_too_new:
      return with_retry_after(
        problem(503, "unavailable", "Service Unavailable",
                detail.empty() ? "a dependency is unavailable; nothing was saved" : detail),
        retry_after_header(err, 5));
    default: return problem(500, "internal", "Internal Server Error", "an internal error occurred");
  }
}


namespace {
struct too_deep {};
struct duplicate_key {
  std::string key;
};
}  // namespace

std::optional<json> parse_object(std::string_view body, std::size_t max_depth, std::string& error) {
  if (body.empty()) {
    error = "the request body is empty; a JSON object is expected";
    return std::nullopt;
  }
  // nlohmann would skip a byte order mark; RFC 8259 8.1 forbids sending one and a proxy may not
  // skip it, so the body is refused rather than read differently from what a proxy saw.
  if (body.size() >= 3 && body.compare(0, 3, "\xEF\xBB\xBF") == 0) {
    error = "the request body starts with a UTF-8 byte order mark; send JSON without it";
    return std::nullopt;
  }
  if (!valid_utf8(body)) {
    error = "the request body is not valid UTF-8";
    return std::nullopt;
  }
  try {
    // The keys seen in each object being read, innermost last. A repeated key is refused: with
    // "last wins" here and "first wins" in a proxy or a validator in front, the two would act on
    // different values (RFC 8259 4 leaves it open, so SBM closes it).
    std::vector<std::unordered_set<std::string>> keys;
    auto strict = [max_depth, &keys](int depth, json::parse_event_t event, json& parsed) {
      switch (event) {
        case json::parse_event_t::object_start:
          keys.emplace_back();
          [[fallthrough]];
        case json::parse_event_t::array_start:
          if (static_cast<std::size_t>(depth) >= max_depth)
            throw too_deep{};
          break;
        case json::parse_event_t::key:
          if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
            throw duplicate_key{parsed.get<std::string>()};
          break;
        case json::parse_event_t::object_end:
          if (!keys.empty())
            keys.pop_back();
          break;
        default:
          break;
      }
      return true;
    };
    auto value = json::parse(body.begin(), body.end(), strict);
    if (!value.is_object()) {
      error = "the request body must be a JSON object";
      return std::nullopt;
    }
    return value;
  } catch (const too_deep&) {
    error = "the JSON nests deeper than " + std::to_string(max_depth) + " levels";
  } catch (const duplicate_key& d) {
    auto key = d.key;
    if (key.size() > 64) {  // named by a prefix, cut at a character boundary
      std::size_t cut = 64;
      while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80)
        --cut;
      key = key.substr(0, cut) + "...";
    }
    error = "duplicate key '" + key + "' in the JSON body";
  } catch (const json::parse_error& e) {
    error = "malformed JSON at byte " + std::to_string(e.byte);
  } catch (const json::out_of_range&) {
    // nlohmann refuses numbers beyond double's range (1e400) with out_of_range, not parse_error.
    error = "the JSON holds a number too large to represent";
  }
  return std::nullopt;
}

std::optional<http_response> media_type_problem(const http_request& req) {
  if (req.body.empty())
    return std::nullopt;
  const std::string* content_type = nullptr;
  for (const auto& h : req.headers)
    if (h.first == "content-type") {
      if (content_type)
        return problem(400, "bad-header", "Bad Request", "the request has more than one Content-Type",
                       "Content-Type");
      content_type = &h.second;
    }
  if (!content_type)
    return problem(415, "unsupported-media-type", "Unsupported Media Type",
                   "a request body needs Content-Type: application/json", "Content-Type");
  if (!is_json_media_type(*content_type))
    return problem(415, "unsupported-media-type", "Unsupported Media Type",
                   "the request body must be application/json (optionally ; charset=utf-8)",
                   "Content-Type");
  return std::nullopt;
}

std::optional<std::string> unknown_field(const json& object, std::initializer_list<const char*> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool listed = false;
    for (auto k : known)
      listed = listed || it.key() == k;
    if (!listed)
      return it.key();
  }
  return std::nullopt;
}

field_reader::field_reader(const json& object, std::string prefix)
  : object_(object), prefix_(std::move(prefix)) {
}

bool field_reader::only(std::initializer_list<const char*> known) {
  auto key = unknown_field(object_, known);
  if (!key)
    return true;
  auto shown = printable(*key, 64);
  fail(shown.c_str(), "is not a known field");
  slug_ = "unknown-field";
  return false;
}

bool field_reader::fail(const char* key, std::string message) {
  if (error_.empty()) {
    field_ = prefix_ + key;
    error_ = "field '" + field_ + "' " + std::move(message);
  }
  return false;
}

const json* field_reader::find(const char* key, bool required) {
  if (failed())
    return nullptr;
  auto i = object_.find(key);
  if (i == object_.end() || i->is_null()) {
    if (required)
      fail(key, "is required");
    return nullptr;
  }
  return &*i;
}

bool field_reader::string(const char* key, std::string& out, bool required, std::size_t max_bytes) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  if (!v->is_string())
    return fail(key, "must be a string");
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes)
    return fail(key, "must be at most " + std::to_string(max_bytes) + " bytes");
  out = s;
  return true;
}

bool field_reader::text(const char* key, std::string& out, bool required, std::size_t max_bytes,
                        bool multiline) {
  std::string s;
  if (!string(key, s, required, max_bytes))
    return false;
  for (unsigned char c : s)
    if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7F)
      return fail(key, "must not contain control characters");
  if (required && s.empty())
    return fail(key, "must not be empty");
  if (find(key, false))
    out = std::move(s);
  return true;
}

bool field_reader::identifier(const char* key, std::string& out, bool required) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  if (!v->is_string())
    return fail(key, "must be a string");
  const auto& s = v->get_ref<const std::string&>();
  if (auto why = id_problem(s))
    return fail(key, *why);
  out = s;
  return true;
}

bool field_reader::number(const char* key, double& out, bool required, double min, double max) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  if (!v->is_number())
    return fail(key, "must be a number");
  double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max)
    return fail(key, "must be between " + json(min).dump() + " and " + json(max).dump());
  out = d;
  return true;
}

bool field_reader::integer(const char* key, std::int64_t& out, bool required, std::int64_t min,
                           std::int64_t max) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  const auto range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (v->is_number_integer()) {
    // Unsigned values above int64 are out of range whatever they are.
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      return fail(key, range);
    const auto x = v->get<std::int64_t>();
    if (x < min || x > max)
      return fail(key, range);
    out = x;
    return true;
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) ||
        d > static_cast<double>(max))
      return fail(key, range);
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return fail(key, range);
}

bool field_reader::timestamp(const char* key, std::optional<std::int64_t>& out, bool required) {
  std::string text;
  if (!string(key, text, required, 64))
    return false;
  if (text.empty())
    return true;
  out = parse_timestamp_ms(text);
  if (!out)
    return fail(key, "must be an RFC 3339 timestamp such as 2026-11-24T10:15:00Z or a date such as "
                     "2026-11-24");
  return true;
}

bool field_reader::boolean(const char* key, bool& out, bool required) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  if (!v->is_boolean())
    return fail(key, "must be true or false");
  out = v->get<bool>();
  return true;
}

bool field_reader::optional_boolean(const char* key, std::optional<bool>& out) {
  bool value = false;
  if (!find(key, false))
    return !failed();
  if (!boolean(key, value, true))
    return false;
  out = value;
  return true;
}

bool field_reader::strings(const char* key, std::vector<std::string>& out, bool required,
                           std::size_t max_items) {
  auto* v = find(key, required);
  if (!v)
    return !failed();
  if (!v->is_array())
    return fail(key, "must be an array of strings");
  if (v->size() > max_items)
    return fail(key, "must have at most " + std::to_string(max_items) + " entries");
  for (const auto& item : *v) {
    if (!item.is_string())
      return fail(key, "must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return true;
}

http_response field_reader::to_problem() const {
  return problem(400, slug_, "Bad Request", error_, field_);
}

}  // namespace sbm::gateway
