#pragma once
// JSON Web Tokens (RFC 7519, compact JWS only) for the gateway: a pure core over OpenSSL 3.
// No I/O, no clock: callers pass `now`, so every rule is testable with fixed times.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sbm::auth {
namespace detail {
struct verifier_state;
}

// alg is one of HS256, HS384, HS512, RS256, ES256. material: raw secret bytes for HS*
// (at least as long as the hash output, RFC 7518 3.2); a PEM for RS256/ES256 (public or
// private to verify, private to sign).
struct jwt_key {
  std::string kid;
  std::string alg;
  std::string material;
};

// An empty issuer is not checked. An empty audience means this service expects no `aud`, so a
// token that carries one is refused (RFC 7519 4.1.3).
//
// max_lifetime bounds how long any token may live, so a leaked token (or one minted with exp in
// 9999) is not a permanent credential: exp - iat must not exceed it. A token without iat is held
// to the same bound measured from the moment it is presented: exp - now must not exceed it (plus
// leeway), so it is usable only within its last max_lifetime. Zero means no bound.
struct jwt_rules {
  std::string issuer;
  std::string audience;
  std::chrono::seconds leeway{30};
  std::chrono::seconds max_lifetime{std::chrono::hours(24)};
};

struct jwt_claims {
  std::string subject, issuer, role, service_id, kid;
  std::vector<std::string> audience, permissions;
  // The optional `client_ids` claim: the token speaks only for these clients. It can narrow the
  // registered user's scope, never widen it (gateway/admission.cpp).
  bool has_client_ids = false;
  std::vector<std::string> client_ids{};
  std::int64_t expires_at = 0, not_before = 0, issued_at = 0;
};

enum class jwt_error {
  malformed,
  unsupported_alg,
  unknown_kid,
  alg_mismatch,
  bad_signature,
  expired,
  not_yet_valid,
  issued_in_future,
  wrong_issuer,
  wrong_audience,
  missing_claim,
  lifetime_too_long,
};

// Short text for a 401 problem detail; never echoes the token.
std::string_view describe(jwt_error error);

inline constexpr std::size_t max_token_size = 8 * 1024;

class jwt_verifier {
 public:
  // Throws std::invalid_argument on a bad key (unknown alg, bad PEM, RSA < 2048 bits, EC curve
  // other than P-256, short HS secret), on duplicate kids, on several keys without kids, or
  // on a negative leeway or max_lifetime. Keys are parsed once here; verify() only reads them, so one verifier
  // may be shared by threads (copies share the parsed keys).
  jwt_verifier(std::vector<jwt_key> keys, jwt_rules rules);

  // Checks, in this order: shape and encoding, alg, kid, signature, then claims. Claims are
  // read only from a token whose signature holds. `sub` and `exp` are required.
  std::variant<jwt_claims, jwt_error> verify(std::string_view token,
                                            std::int64_t now_unix_seconds) const;

 private:
  std::shared_ptr<const detail::verifier_state> state_;
};

// Signs claims (a JSON object serialised by the caller, signed byte for byte) with the key;
// the header is {alg, typ: "JWT", kid} (kid omitted when empty). Throws std::invalid_argument
// on a bad key or when claims_json is not a JSON object.
std::string jwt_sign(const jwt_key& key, std::string_view claims_json);

// A keyring file, JSON:
//   {"keys":[{"kid":"k1","alg":"HS256","secret":"<base64url>"},
//            {"kid":"k2","alg":"RS256","public_pem":"...","private_pem":"..."}]}
// HS secrets are base64url, padding optional. With want_private the private PEM is required;
// without it the public PEM is used, or the private one when that is all there is. Every key is
// checked as jwt_verifier would; an error message names the offending entry, never its secret.
std::variant<std::vector<jwt_key>, std::string> parse_keyring(std::string_view json_text,
                                                              bool want_private);

}  // namespace sbm::auth
