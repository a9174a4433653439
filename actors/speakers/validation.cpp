#include "actors/speakers/validation.hpp"

#include <cmath>
#include <cstdint>

namespace sbm::speakers {

bool is_valid_utf8(std::string_view value) {
  std::size_t i = 0;
  const std::size_t n = value.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(value[i]);
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(value[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (code < min_for_length[extra] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF)
      return false;
    i += extra + 1;
  }
  return true;
}

std::optional<std::string> check_id(std::string_view field, std::string_view value) {
  if (value.empty()) return std::string(field) + " must not be empty";
  if (value.size() > max_id_bytes)
    return std::string(field) + " must be at most " + std::to_string(max_id_bytes) + " bytes";
  if (!is_valid_utf8(value)) return std::string(field) + " must be valid UTF-8";
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return std::string(field) + " must not contain control characters";
  }
  return std::nullopt;
}

std::optional<std::string> check_text(std::string_view field, std::string_view value,
                                      std::size_t max_bytes, bool required) {
  if (required && value.empty()) return std::string(field) + " must not be empty";
  if (value.size() > max_bytes)
    return std::string(field) + " must be at most " + std::to_string(max_bytes) + " bytes";
  if (!is_valid_utf8(value)) return std::string(field) + " must be valid UTF-8";
  if (value.find('\0') != std::string_view::npos)
    return std::string(field) + " must not contain NUL";
  return std::nullopt;
}

std::optional<std::string> check_rate(std::string_view field, double value) {
  if (!std::isfinite(value) || value < 0 || value > max_errors_per_100_words)
    return std::string(field) + " must be a number between 0 and 1000000";
  return std::nullopt;
}

}  // namespace sbm::speakers
