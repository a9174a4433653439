#pragma once
// ISO-8601 timestamps at the API edge, in the RFC 3339 profile: parsed strictly into Unix
// milliseconds before any value goes near a query, and printed the one way SBM prints them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sbm::gateway {

// Accepts "YYYY-MM-DD" (midnight UTC) and "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"
// for years 0001..9999. The fraction may have 1..9 digits; digits past milliseconds are dropped.
// Calendar-checked (no February 30th); leap seconds (:60) are refused. Anything else: nullopt.
std::optional<std::int64_t> parse_timestamp_ms(std::string_view text);

// "2026-11-24T10:15:00.123Z"
std::string format_timestamp_ms(std::int64_t unix_ms);

}  // namespace sbm::gateway
