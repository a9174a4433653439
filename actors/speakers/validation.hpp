#pragma once
// Defence in depth: the gateway validates input before it reaches an actor, but cluster peers and
// internal callers are not the gateway, so the speakers family refuses bad values itself.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/domain/ids.hpp"
#include "runtime/text/utf8.hpp"

namespace sbm::speakers {

using domain::max_id_bytes;
inline constexpr std::size_t max_text_bytes = 1024;  // reasons, display names
// A rate far above anything a real draft produces; also keeps float storage in the window exact.
inline constexpr double max_errors_per_100_words = 1'000'000;

// nullopt when acceptable, else a message naming the field.
// Ids: the one rule of runtime/domain/ids.hpp.
std::optional<std::string> check_id(std::string_view field, std::string_view value);
// Free text: valid UTF-8, no NUL (PostgreSQL text cannot hold it), at most max_bytes.
std::optional<std::string> check_text(std::string_view field, std::string_view value,
                                      std::size_t max_bytes, bool required);
// A quality rate: finite and within [0, max_errors_per_100_words].
std::optional<std::string> check_rate(std::string_view field, double value);

using text::valid_utf8;

}  // namespace sbm::speakers
