#include "gateway/request_checks.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace sbm::gateway {

namespace {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::optional<std::string> framing_problem(unsigned http_major, unsigned http_minor,
                                           const header_list& headers) {
  if (http_major == 0)
    return std::string{"the request line has no HTTP version"};
  if (http_major != 1 || http_minor > 1)
    return "HTTP/" + std::to_string(http_major) + "." + std::to_string(http_minor) + " is not supported";
  std::size_t hosts = 0;
  for (std::string_view once : {"host", "authorization", "content-type", "content-length"}) {
    std::size_t count = 0;
    for (const auto& h : headers)
      if (h.first == once)
        ++count;
    if (once == "host")
      hosts = count;
    if (count > 1)
      return "the request has more than one " + std::string{once} + " header";
  }
  if (http_minor == 1 && hosts == 0)
    return std::string{"an HTTP/1.1 request needs a Host header"};
  return std::nullopt;
}

bool is_json_media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  if (!iequals(trim_ows(content_type.substr(0, semi)), "application/json"))
    return false;
  if (semi == std::string_view::npos)
    return true;
  // One parameter is understood: charset, and only UTF-8 (RFC 8259 8.1), quoted or not.
  auto param = trim_ows(content_type.substr(semi + 1));
  auto eq = param.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(param.substr(0, eq)), "charset"))
    return false;
  auto value = trim_ows(param.substr(eq + 1));
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  return iequals(value, "utf-8");
}

std::optional<std::string> canonical_ip(std::string_view text) {
  if (text.empty() || text.size() > 45)
    return std::nullopt;
  std::string s{text};
  char out[INET6_ADDRSTRLEN];
  unsigned char raw[16];
  if (inet_pton(AF_INET, s.c_str(), raw) == 1 && inet_ntop(AF_INET, raw, out, sizeof out))
    return std::string{out};
  if (inet_pton(AF_INET6, s.c_str(), raw) == 1 && inet_ntop(AF_INET6, raw, out, sizeof out))
    return std::string{out};
  return std::nullopt;
}

std::string client_address(const std::string& peer, const header_list& headers,
                           const std::set<std::string, std::less<>>& trusted_proxies) {
  if (trusted_proxies.find(peer) == trusted_proxies.end())
    return peer;
  std::vector<std::string_view> hops;
  for (const auto& h : headers) {
    if (h.first != "x-forwarded-for")
      continue;
    std::string_view list{h.second};
    while (true) {
      auto comma = list.find(',');
      hops.push_back(trim_ows(list.substr(0, comma)));
      if (comma == std::string_view::npos)
        break;
      list.remove_prefix(comma + 1);
    }
  }
  std::string address = peer;
  for (auto i = hops.rbegin(); i != hops.rend(); ++i) {
    auto ip = canonical_ip(*i);
    if (!ip)
      break;
    address = *ip;
    if (trusted_proxies.find(address) == trusted_proxies.end())
      break;
  }
  return address;
}

}  // namespace sbm::gateway
