#include "gateway/auth/jwt.hpp"

#include "gateway/auth/base64url.hpp"
#include "gateway/auth/jwt_crypto.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

namespace sbm::auth {

using json = nlohmann::json;
using detail::crypto_key;
using detail::jwt_alg;

namespace detail {

struct verifier_key {
  std::string kid;
  crypto_key key;
};

struct verifier_state {
  std::vector<verifier_key> keys;
  jwt_rules rules;
};

}  // namespace detail

namespace {

// 9999-12-31T23:59:59Z. Beyond it a NumericDate is a mistake or an attack on the arithmetic.
constexpr std::int64_t max_numeric_date = 253402300799;

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
  std::int64_t difference = 0;
  if (!__builtin_sub_overflow(a, b, &difference)) return difference;
  return b > 0 ? INT64_MIN : INT64_MAX;
}

std::optional<json> parse_object(std::string_view text) {
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!value.is_object()) return std::nullopt;
  return value;
}

jwt_alg alg_or_throw(std::string_view name) {
  const auto alg = detail::parse_alg(name);
  if (!alg) throw std::invalid_argument("unsupported JWT alg");
  return *alg;
}

// What a claim holds when present: the right type, or a reason to refuse the token as malformed.
enum class claim_read { absent, ok, wrong_type };

claim_read read_string(const json& claims, const char* name, std::string& out) {
  const auto it = claims.find(name);
  if (it == claims.end()) return claim_read::absent;
  if (!it->is_string()) return claim_read::wrong_type;
  out = it->get<std::string>();
  return claim_read::ok;
}

claim_read read_string_array(const json& value, std::vector<std::string>& out) {
  if (!value.is_array()) return claim_read::wrong_type;
  out.clear();
  out.reserve(value.size());
  for (const auto& element : value) {
    if (!element.is_string()) return claim_read::wrong_type;
    out.push_back(element.get<std::string>());
  }
  return claim_read::ok;
}

// NumericDate (RFC 7519 2) may have a fraction. Rounding goes toward refusal: exp down, nbf and
// iat up, so a fraction never buys a token an extra second.
enum class rounding { down, up };

claim_read read_numeric_date(const json& claims, const char* name, rounding direction,
                             std::int64_t& out) {
  const auto it = claims.find(name);
  if (it == claims.end()) return claim_read::absent;
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(max_numeric_date)) return claim_read::wrong_type;
    out = static_cast<std::int64_t>(value);
    return claim_read::ok;
  }
  if (it->is_number_integer()) {
    const auto value = it->get<std::int64_t>();
    if (value < 0 || value > max_numeric_date) return claim_read::wrong_type;
    out = value;
    return claim_read::ok;
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    if (!std::isfinite(value) || value < 0 || value > static_cast<double>(max_numeric_date))
      return claim_read::wrong_type;
    out = static_cast<std::int64_t>(direction == rounding::down ? std::floor(value) : std::ceil(value));
    return claim_read::ok;
  }
  return claim_read::wrong_type;
}

struct token_parts {
  std::string_view header, payload, signature;
};

std::optional<token_parts> split_token(std::string_view token) {
  const auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  token_parts parts{token.substr(0, first), token.substr(first + 1, second - first - 1),
                    token.substr(second + 1)};
  if (parts.header.empty() || parts.payload.empty()) return std::nullopt;
  return parts;
}

std::variant<const detail::verifier_key*, jwt_error> select_key(const detail::verifier_state& state,
                                                               const json& header) {
  const auto kid = header.find("kid");
  if (kid == header.end()) {
    // Without a kid the choice would be a guess; with one key there is nothing to choose.
    if (state.keys.size() == 1) return &state.keys.front();
    return jwt_error::unknown_kid;
  }
  if (!kid->is_string()) return jwt_error::malformed;
  const auto& wanted = kid->get_ref<const std::string&>();
  for (const auto& candidate : state.keys)
    if (candidate.kid == wanted) return &candidate;
  return jwt_error::unknown_kid;
}

std::variant<jwt_claims, jwt_error> check_claims(const json& payload, const jwt_rules& rules,
                                                 std::int64_t now) {
  jwt_claims claims;
  const claim_read exp = read_numeric_date(payload, "exp", rounding::down, claims.expires_at);
  const claim_read nbf = read_numeric_date(payload, "nbf", rounding::up, claims.not_before);
  const claim_read iat = read_numeric_date(payload, "iat", rounding::up, claims.issued_at);
  const claim_read sub = read_string(payload, "sub", claims.subject);
  const claim_read iss = read_string(payload, "iss", claims.issuer);
  const claim_read role = read_string(payload, "role", claims.role);
  const claim_read service_id = read_string(payload, "service_id", claims.service_id);
  for (const claim_read read : {exp, nbf, iat, sub, iss, role, service_id})
    if (read == claim_read::wrong_type) return jwt_error::malformed;
  if (const auto aud = payload.find("aud"); aud != payload.end()) {
    if (aud->is_string()) {
      claims.audience.push_back(aud->get<std::string>());
    } else if (read_string_array(*aud, claims.audience) != claim_read::ok) {
      return jwt_error::malformed;
    }
  }
  if (const auto permissions = payload.find("permissions"); permissions != payload.end())
    if (read_string_array(*permissions, claims.permissions) != claim_read::ok) return jwt_error::malformed;
  if (const auto clients = payload.find("client_ids"); clients != payload.end()) {
    if (read_string_array(*clients, claims.client_ids) != claim_read::ok) return jwt_error::malformed;
    claims.has_client_ids = true;
  }

  if (exp != claim_read::ok || sub != claim_read::ok || claims.subject.empty())
    return jwt_error::missing_claim;
  const std::int64_t leeway = rules.leeway.count();
  // RFC 7519 4.1.4: the token is good only *before* exp.
  if (saturating_sub(now, leeway) >= claims.expires_at) return jwt_error::expired;
  if (nbf == claim_read::ok && claims.not_before > saturating_add(now, leeway))
    return jwt_error::not_yet_valid;
  if (iat == claim_read::ok && claims.issued_at > saturating_add(now, leeway))
    return jwt_error::issued_in_future;
  if (const std::int64_t max_lifetime = rules.max_lifetime.count(); max_lifetime > 0) {
    if (iat == claim_read::ok) {
      if (saturating_sub(claims.expires_at, claims.issued_at) > max_lifetime)
        return jwt_error::lifetime_too_long;
    } else if (saturating_sub(claims.expires_at, now) > saturating_add(max_lifetime, leeway)) {
      return jwt_error::lifetime_too_long;
    }
  }
  if (!rules.issuer.empty()) {
    if (iss != claim_read::ok) return jwt_error::missing_claim;
    if (claims.issuer != rules.issuer) return jwt_error::wrong_issuer;
  }
  if (rules.audience.empty()) {
    // RFC 7519 4.1.3: a recipient that is not named in a present aud must refuse the token.
    if (!claims.audience.empty()) return jwt_error::wrong_audience;
  } else {
    if (claims.audience.empty()) return jwt_error::missing_claim;
    if (std::find(claims.audience.begin(), claims.audience.end(), rules.audience) ==
        claims.audience.end())
      return jwt_error::wrong_audience;
  }
  return claims;
}

}  // namespace

std::string_view describe(jwt_error error) {
  switch (error) {
    case jwt_error::malformed: return "the bearer token is malformed";
    case jwt_error::unsupported_alg: return "the token's algorithm is not accepted";
    case jwt_error::unknown_kid: return "the token's key id is not known";
    case jwt_error::alg_mismatch: return "the token's algorithm does not match its key";
    case jwt_error::bad_signature: return "the token's signature is invalid";
    case jwt_error::expired: return "the token has expired";
    case jwt_error::not_yet_valid: return "the token is not valid yet";
    case jwt_error::issued_in_future: return "the token claims to be issued in the future";
    case jwt_error::wrong_issuer: return "the token's issuer is not trusted";
    case jwt_error::wrong_audience: return "the token is meant for another audience";
    case jwt_error::missing_claim: return "the token lacks a required claim";
    case jwt_error::lifetime_too_long: return "the token lives longer than this service allows";
  }
  return "the bearer token is invalid";
}

jwt_verifier::jwt_verifier(std::vector<jwt_key> keys, jwt_rules rules) {
  if (keys.empty()) throw std::invalid_argument("a JWT verifier needs at least one key");
  if (rules.leeway.count() < 0) throw std::invalid_argument("JWT leeway must not be negative");
  if (rules.max_lifetime.count() < 0)
    throw std::invalid_argument("JWT maximum lifetime must not be negative");
  auto state = std::make_shared<detail::verifier_state>();
  state->rules = std::move(rules);
  state->keys.reserve(keys.size());
  for (auto& key : keys) {
    if (keys.size() > 1 && key.kid.empty())
      throw std::invalid_argument("with several JWT keys every key needs a kid");
    for (const auto& loaded : state->keys)
      if (loaded.kid == key.kid) throw std::invalid_argument("duplicate JWT kid: " + key.kid);
    try {
      crypto_key loaded{alg_or_throw(key.alg), key.material, crypto_key::purpose::verify};
      state->keys.push_back({std::move(key.kid), std::move(loaded)});
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("JWT key \"" + key.kid + "\": " + e.what());
    }
  }
  state_ = std::move(state);
}

std::variant<jwt_claims, jwt_error> jwt_verifier::verify(std::string_view token,
                                                         std::int64_t now_unix_seconds) const {
  if (token.size() > max_token_size) return jwt_error::malformed;
  const auto parts = split_token(token);
  // Every segment is checked before any is used, so that a bad spelling anywhere is reported
  // as malformed, whatever the signature.
  if (!parts || !is_canonical_base64url(parts->header) || !is_canonical_base64url(parts->payload) ||
      !is_canonical_base64url(parts->signature))
    return jwt_error::malformed;

  const auto header_text = base64url_decode(parts->header);
  const auto header = header_text ? parse_object(*header_text) : std::nullopt;
  if (!header) return jwt_error::malformed;
  const auto alg_field = header->find("alg");
  if (alg_field == header->end() || !alg_field->is_string()) return jwt_error::malformed;
  // RFC 7515 4.1.11: extensions the recipient does not understand must not be ignored.
  if (header->contains("crit")) return jwt_error::malformed;
  const auto alg = detail::parse_alg(alg_field->get_ref<const std::string&>());
  if (!alg) return jwt_error::unsupported_alg;

  const auto selected = select_key(*state_, *header);
  if (const auto* error = std::get_if<jwt_error>(&selected)) return *error;
  const auto* key = std::get<const detail::verifier_key*>(selected);
  // The key, never the token, decides the algorithm.
  if (key->key.alg() != *alg) return jwt_error::alg_mismatch;

  const auto signature = base64url_decode(parts->signature);
  const std::string_view signing_input =
      token.substr(0, parts->header.size() + 1 + parts->payload.size());
  if (!signature || !key->key.verify(signing_input, *signature)) return jwt_error::bad_signature;

  // Only now, with the signature holding, is the payload read at all.
  const auto payload_text = base64url_decode(parts->payload);
  const auto payload = payload_text ? parse_object(*payload_text) : std::nullopt;
  if (!payload) return jwt_error::malformed;
  auto result = check_claims(*payload, state_->rules, now_unix_seconds);
  if (auto* claims = std::get_if<jwt_claims>(&result)) claims->kid = key->kid;
  return result;
}

std::string jwt_sign(const jwt_key& key, std::string_view claims_json) {
  const crypto_key signer{alg_or_throw(key.alg), key.material, crypto_key::purpose::sign};
  if (!parse_object(claims_json)) throw std::invalid_argument("JWT claims must be a JSON object");
  json header = {{"alg", key.alg}, {"typ", "JWT"}};
  if (!key.kid.empty()) header["kid"] = key.kid;
  std::string token = base64url_encode(header.dump());
  token += '.';
  token += base64url_encode(claims_json);
  const std::string signature = signer.sign(token);
  token += '.';
  token += base64url_encode(signature);
  return token;
}

namespace {

// Keyring secrets come from operators (`openssl rand -base64 32 | tr '+/' '-_'` keeps the
// padding), so padding is accepted here, unlike in tokens.
std::optional<std::string> decode_secret(std::string_view text) {
  if (text.size() % 4 == 0) {
    for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i) text.remove_suffix(1);
  }
  return base64url_decode(text);
}

std::optional<std::string> string_field(const json& entry, const char* name) {
  const auto it = entry.find(name);
  if (it == entry.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The key and its material if the entry is usable; otherwise the reason, free of secrets.
std::variant<jwt_key, std::string> read_keyring_entry(const json& entry, bool want_private) {
  if (!entry.is_object()) return std::string{"is not an object"};
  jwt_key key;
  if (entry.contains("kid")) {
    auto kid = string_field(entry, "kid");
    if (!kid) return std::string{"kid is not a string"};
    key.kid = std::move(*kid);
  }
  auto alg_text = string_field(entry, "alg");
  if (!alg_text) return std::string{"has no alg"};
  const auto alg = detail::parse_alg(*alg_text);
  if (!alg) return "alg \"" + *alg_text + "\" is not supported";
  key.alg = std::move(*alg_text);

  if (*alg == jwt_alg::hs256 || *alg == jwt_alg::hs384 || *alg == jwt_alg::hs512) {
    const auto secret = string_field(entry, "secret");
    if (!secret) return std::string{"has no secret"};
    auto bytes = decode_secret(*secret);
    if (!bytes) return std::string{"secret is not base64url"};
    key.material = std::move(*bytes);
  } else if (want_private) {
    auto pem = string_field(entry, "private_pem");
    if (!pem) return std::string{"has no private_pem"};
    key.material = std::move(*pem);
  } else {
    auto pem = string_field(entry, "public_pem");
    if (!pem) pem = string_field(entry, "private_pem");
    if (!pem) return std::string{"has neither public_pem nor private_pem"};
    key.material = std::move(*pem);
  }
  try {
    crypto_key{*alg, key.material, want_private ? crypto_key::purpose::sign : crypto_key::purpose::verify};
  } catch (const std::exception& e) {
    return std::string{e.what()};
  }
  return key;
}

}  // namespace

std::variant<std::vector<jwt_key>, std::string> parse_keyring(std::string_view json_text,
                                                              bool want_private) {
  const auto root = parse_object(json_text);
  if (!root) return std::string{"keyring is not a JSON object"};
  const auto entries = root->find("keys");
  if (entries == root->end() || !entries->is_array() || entries->empty())
    return std::string{"keyring needs a non-empty \"keys\" array"};

  std::vector<jwt_key> keys;
  keys.reserve(entries->size());
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const json& entry = (*entries)[i];
    std::string name = "keys[" + std::to_string(i) + "]";
    if (entry.is_object()) {
      if (const auto kid = string_field(entry, "kid")) name += " (kid \"" + *kid + "\")";
    }
    auto read = read_keyring_entry(entry, want_private);
    if (auto* problem = std::get_if<std::string>(&read)) return name + ": " + *problem;
    auto& key = std::get<jwt_key>(read);
    if (entries->size() > 1 && key.kid.empty()) return name + ": needs a kid when there are several keys";
    for (const auto& earlier : keys)
      if (earlier.kid == key.kid) return name + ": duplicate kid";
    keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace sbm::auth
