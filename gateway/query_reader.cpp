#include "gateway/query_reader.hpp"

#include <charconv>

#include "gateway/timestamps.hpp"

namespace sbm::gateway {

query_reader::query_reader(const gateway_context& c, const http_request& r,
                           std::initializer_list<const char*> allowed)
  : ctx(c), req(r) {
  ok = read_query(ctx, req, pairs);
  if (!ok)
    return;
  for (const auto& p : pairs) {
    bool known = false;
    for (auto a : allowed)
      known = known || p.first == a;
    if (!known) {
      fail(p.first, "is not a known query parameter");
      return;
    }
  }
}

void query_reader::fail(const std::string& name, const std::string& why) {
  if (!ok)
    return;
  ok = false;
  ctx.reply(req, problem(400, "invalid-query", "Bad Request", "'" + name + "' " + why, name));
}

std::string query_reader::get(const char* name) const {
  for (const auto& p : pairs)
    if (p.first == name)
      return p.second;
  return {};
}

std::uint32_t query_reader::count(const char* name, std::uint32_t fallback, std::uint32_t max) {
  auto text = get(name);
  if (text.empty())
    return fallback;
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > max) {
    fail(name, "must be an integer from 1 to " + std::to_string(max));
    return 0;
  }
  return value;
}

std::string query_reader::identifier(const char* name) {
  auto v = get(name);
  if (!v.empty())
    if (auto why = id_problem(v))
      fail(name, *why);
  return v;
}

std::int64_t query_reader::timestamp(const char* name, bool* present) {
  auto v = get(name);
  if (present)
    *present = !v.empty();
  if (v.empty())
    return 0;
  auto ms = parse_timestamp_ms(v);
  if (!ms) {
    fail(name, "must be an ISO-8601 date or timestamp (2026-11-24 or 2026-11-24T10:15:00Z)");
    return 0;
  }
  return *ms;
}

}  // namespace sbm::gateway
