#include "gateway/router.hpp"

namespace sbm::gateway {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  out.reserve(8);  // every route has fewer segments: one allocation per match
  size_t pos = 0;
  if (!path.empty() && path.front() == '/')
    pos = 1;
  while (pos <= path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos)
      next = path.size();
    out.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  // "/v1/speakers/" and "/v1/speakers" mean the same collection.
  if (out.size() > 1 && out.back().empty())
    out.pop_back();
  return out;
}

// The "{}" add() stores for a placeholder (no literal segment starts with '{').
bool is_placeholder(const std::string& segment) {
  return segment.size() == 2 && segment[0] == '{';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

void add_allowed(std::string& allow, std::string_view method) {
  std::string_view rest{allow};
  while (!rest.empty()) {
    auto comma = rest.find(", ");
    if (rest.substr(0, comma) == method)
      return;
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
  }
  if (!allow.empty())
    allow += ", ";
  allow += method;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size())
        return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  size_t pos = 0;
  while (pos < query.size()) {
    auto amp = query.find('&', pos);
    if (amp == std::string_view::npos)
      amp = query.size();
    auto part = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty())
      continue;
    auto eq = part.find('=');
    std::string key, value;
    if (!percent_decode(part.substr(0, eq), key, true))
      return false;
    if (eq != std::string_view::npos && !percent_decode(part.substr(eq + 1), value, true))
      return false;
    out.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

void router::add(std::string method, std::string_view pattern, int route) {
  entry e{std::move(method), {}, route};
  for (auto seg : split_path(pattern))
    e.segments.emplace_back(!seg.empty() && seg.front() == '{' ? std::string{"{}"} : std::string{seg});
  entries_.push_back(std::move(e));
}

route_result router::match(std::string_view method, std::string_view raw_path) const {
  const auto raw = split_path(raw_path);
  // An undecodable path is refused whatever it would match. Values are decoded only for the
  // placeholders of the route that matches: decoding every segment up front cost an allocation per
  // segment on the HTTP thread for every request.
  std::string scratch;
  for (auto seg : raw)
    if (seg.find('%') != std::string_view::npos && !percent_decode(seg, scratch, false))
      return route_bad_path{"the path contains an invalid percent-encoding"};
  std::string allow;
  for (const auto& e : entries_) {
    if (e.segments.size() != raw.size())
      continue;
    bool ok = true;
    // A placeholder takes any non-empty segment (decoding never empties one); literal segments
    // are compared as sent (encoded), so "%76%31" is not "v1".
    for (size_t i = 0; i < raw.size() && ok; ++i)
      ok = is_placeholder(e.segments[i]) ? !raw[i].empty() : e.segments[i] == raw[i];
    if (!ok)
      continue;
    // HEAD is GET without the body (RFC 9110 9.3.2): every GET route answers it too.
    if (e.method == method || (method == "HEAD" && e.method == "GET")) {
      std::vector<std::string> params;
      for (size_t i = 0; i < raw.size(); ++i)
        if (is_placeholder(e.segments[i])) {
          params.emplace_back();
          percent_decode(raw[i], params.back(), false);
        }
      return route_match{e.route, std::move(params)};
    }
    add_allowed(allow, e.method);
    if (e.method == "GET")
      add_allowed(allow, "HEAD");
  }
  if (!allow.empty())
    return route_bad_method{allow};
  return route_not_found{};
}

}  // namespace sbm::gateway
