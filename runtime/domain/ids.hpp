#pragma once
// The one rule for an identifier, whatever it names (speaker, client, job, user, pattern): the
// gateway applies it to path and body ids alike, the families to what reaches them by message.
// Pure: no CAF, no I/O.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sbm::domain {

inline constexpr std::size_t max_id_bytes = 128;

// nullopt when `value` is an acceptable id: 1..128 bytes of valid UTF-8 without control
// characters or '/' (ids appear in URL paths). Else the reason, without the field's name.
std::optional<std::string> id_problem(std::string_view value);

// A numeric id or cursor (error reports, audit rows): a decimal integer from 1 to INT64_MAX with
// nothing around it. nullopt otherwise.
std::optional<std::int64_t> positive_integer(std::string_view text);

}  // namespace sbm::domain
