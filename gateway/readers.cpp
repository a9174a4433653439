#include "gateway/readers.hpp"

#include <nlohmann/json.hpp>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/router.hpp"
#include "gateway/timestamps.hpp"
#include "runtime/domain/ids.hpp"

namespace sbm::gateway {

namespace {

http_response query_problem(const std::string& name, const std::string& why) {
  auto shown = printable(name, 64);
  return problem(400, "invalid-query", "Bad Request", "'" + shown + "' " + why, shown);
}

}  // namespace

query_reader::query_reader(const gateway_context& c, const http_request& r,
                           std::initializer_list<const char*> allowed)
  : ctx_(c), req_(r) {
  if (auto refused = refusal(req_.query, allowed, pairs_)) {
    ok = false;
    ctx_.reply(req_, std::move(*refused));
  }
}

std::optional<http_response> query_reader::refusal(
  std::string_view query, std::initializer_list<const char*> allowed,
  std::vector<std::pair<std::string, std::string>>& pairs) {
  if (!parse_query(query, pairs))
    return problem(400, "bad-query", "Bad Request",
                   "the query string contains an invalid percent-encoding");
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& name = pairs[i].first;
    bool known = false;
    for (auto a : allowed)
      known = known || name == a;
    if (!known)
      return query_problem(name, "is not a known query parameter");
    // Which of two values counts is a question a proxy and SBM could answer differently.
    for (std::size_t j = 0; j < i; ++j)
      if (pairs[j].first == name)
        return query_problem(name, "is given more than once");
    // "?bucket=" could mean "no filter" or "the empty bucket": the client says which by leaving
    // the parameter out.
    if (pairs[i].second.empty())
      return query_problem(name, "is empty; leave the parameter out instead");
  }
  return std::nullopt;
}

void query_reader::fail(const std::string& name, const std::string& why) {
  if (!ok)
    return;
  ok = false;
  ctx_.reply(req_, query_problem(name, why));
}

std::string query_reader::get(const char* name) const {
  for (const auto& p : pairs_)
    if (p.first == name)
      return p.second;
  return {};
}

std::string query_reader::text(const char* name, std::size_t max_bytes) {
  auto v = get(name);
  if (v.size() > max_bytes)
    fail(name, "must be at most " + std::to_string(max_bytes) + " bytes");
  else if (!valid_utf8(v))
    fail(name, "must be valid UTF-8");
  else
    for (unsigned char c : v)
      if (c < 0x20 || c == 0x7F) {
        fail(name, "must not contain control characters");
        break;
      }
  return v;
}

std::string query_reader::identifier(const char* name) {
  auto v = get(name);
  if (!v.empty())
    if (auto why = domain::id_problem(v))
      fail(name, *why);
  return v;
}

std::uint32_t query_reader::limit(const char* name, std::uint32_t fallback, std::uint32_t max) {
  auto text = get(name);
  if (text.empty())
    return fallback;
  auto value = domain::positive_integer(text);
  if (!value || *value > max) {
    fail(name, "must be an integer from 1 to " + std::to_string(max));
    return fallback;
  }
  return static_cast<std::uint32_t>(*value);
}

std::int64_t query_reader::cursor(const char* name) {
  auto text = get(name);
  if (text.empty())
    return 0;
  auto value = domain::positive_integer(text);
  if (!value)
    fail(name, "is not a cursor this API returned");
  return value.value_or(0);
}

std::optional<std::int64_t> query_reader::timestamp(const char* name) {
  auto v = get(name);
  if (v.empty())
    return std::nullopt;
  auto ms = parse_timestamp_ms(v);
  if (!ms)
    fail(name, "must be an RFC 3339 timestamp such as 2026-11-24T10:15:00Z or a date such as "
               "2026-11-24");
  return ms;
}

std::optional<nlohmann::json> body_object(const gateway_context& ctx, const http_request& req,
                                          std::initializer_list<const char*> known) {
  std::string error;
  auto value = parse_object(req.body, ctx.settings.max_json_depth, error);
  if (!value) {
    ctx.reply(req, problem(400, "malformed-body", "Bad Request", error));
    return std::nullopt;
  }
  field_reader fields{*value};
  if (!fields.only(known)) {
    ctx.reply(req, fields.to_problem());
    return std::nullopt;
  }
  return value;
}

bool path_id_ok(const gateway_context& ctx, const http_request& req, const std::string& value,
                const char* what, const char* field) {
  auto why = domain::id_problem(value);
  if (!why)
    return true;
  ctx.reply(req, problem(400, "invalid-field", "Bad Request", std::string{what} + " " + *why, field));
  return false;
}

std::optional<std::int64_t> path_number(const gateway_context& ctx, const http_request& req,
                                        const std::string& value, const char* what,
                                        const char* field) {
  auto n = domain::positive_integer(value);
  if (!n)
    ctx.reply(req, problem(400, "invalid-field", "Bad Request",
                           std::string{what} + " must be a positive integer", field));
  return n;
}

}  // namespace sbm::gateway
