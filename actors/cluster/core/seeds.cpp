#include "actors/cluster/core/seeds.hpp"

#include <cctype>

namespace sbm::cluster {

namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::variant<std::vector<seed_address>, std::string> parse_seeds(std::string_view text) {
  std::vector<seed_address> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto entry = trimmed(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (entry.empty())
      continue;
    const auto colon = entry.rfind(':');
    const auto bad = "'" + std::string{entry} + "' is not host:port";
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == entry.size())
      return bad;
    const auto digits = entry.substr(colon + 1);
    if (digits.size() > 5)
      return bad;
    std::uint32_t port = 0;
    for (char c : digits) {
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return bad;
      port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535)
      return "'" + std::string{entry} + "': the port must be 1..65535";
    out.emplace_back(std::string{entry.substr(0, colon)}, static_cast<std::uint16_t>(port));
  }
  return out;
}

}  // namespace sbm::cluster
