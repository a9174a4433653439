#pragma once
// The Idempotency-Key header of writes (IETF httpapi draft): what a key may be, and the digest of
// the request it is bound to. Pure (no CAF, no RESTinio), so it runs on the HTTP threads.
#include <optional>
#include <string>
#include <string_view>

namespace sbm::gateway {

inline constexpr std::string_view idempotency_header = "idempotency-key";

// The key as sent: a token of 1..255 visible ASCII characters, or the draft's quoted sf-string
// form of the same ("..."), which is unquoted. nullopt with `why` set when it is neither.
std::optional<std::string> parse_idempotency_key(std::string_view value, std::string& why);

// Hex SHA-256 over method, path, query and body, each length-prefixed, so no two different
// requests share a digest by moving bytes between the parts.
std::string request_digest(std::string_view method, std::string_view path, std::string_view query,
                           std::string_view body);

}  // namespace sbm::gateway
