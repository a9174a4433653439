#pragma once
// base64url (RFC 4648 section 5) as JWS uses it: no padding, and decoding is strict so that one
// token has exactly one spelling (no padding, no foreign characters, no stray trailing bits).

#include <optional>
#include <string>
#include <string_view>

namespace sbm::auth {

std::string base64url_encode(std::string_view bytes);

// True when text is the unpadded base64url spelling of some byte string.
bool is_canonical_base64url(std::string_view text);

std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace sbm::auth
