#include "actors/speakers/validation.hpp"

#include <cmath>
#include <cstdint>

#include "runtime/domain/ids.hpp"

namespace sbm::speakers {


std::optional<std::string> check_id(std::string_view field, std::string_view value) {
  if (auto why = domain::id_problem(value)) return std::string(field) + " " + *why;
  return std::nullopt;
}

std::optional<std::string> check_text(std::string_view field, std::string_view value,
                                      std::size_t max_bytes, bool required) {
  if (required && value.empty()) return std::string(field) + " must not be empty";
  if (value.size() > max_bytes)
    return std::string(field) + " must be at most " + std::to_string(max_bytes) + " bytes";
  if (!valid_utf8(value)) return std::string(field) + " must be valid UTF-8";
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
