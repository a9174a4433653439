#include "runtime/domain/ids.hpp"

#include <charconv>

#include "runtime/text/utf8.hpp"

namespace sbm::domain {

std::optional<std::string> id_problem(std::string_view value) {
  if (value.empty())
    return std::string{"must not be empty"};
  if (value.size() > max_id_bytes)
    return "must be at most " + std::to_string(max_id_bytes) + " bytes (got " +
           std::to_string(value.size()) + ")";
  if (!text::valid_utf8(value))
    return std::string{"must be valid UTF-8"};
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7F || c == '/')
      return std::string{"must not contain control characters or '/'"};
  return std::nullopt;
}

std::optional<std::int64_t> positive_integer(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value <= 0)
    return std::nullopt;
  return value;
}

}  // namespace sbm::domain
