#include "gateway/auth/base64url.hpp"
#include "gateway/auth/jwt.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/hmac.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace {

using namespace sbm::auth;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::int64_t now = 1'700'000'000;
const std::string issuer = "https://auth.sbm.test";
const std::string audience = "sbm-gateway";

std::string testdata(const std::string& name) {
  std::ifstream in{std::string{SBM_SOURCE_DIR} + "/gateway/auth/testdata/" + name, std::ios::binary};
  if (!in) throw std::runtime_error("missing test key " + name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string secret_a = "0123456789abcdef0123456789abcdef";   // 32 bytes
const std::string secret_b = "fedcba9876543210fedcba9876543210";   // 32 bytes
const std::string secret_48(48, 'x');
const std::string secret_64(64, 'y');

json user_claims() {
  return {{"sub", "user-17"}, {"role", "qa"}, {"iss", issuer}, {"aud", audience},
          {"exp", now + 600}, {"nbf", now - 10}, {"iat", now - 10}};
}

json service_claims() {
  return {{"sub", "svc-drafting"}, {"service_id", "drafting-pipeline"},
          {"permissions", {"buckets:read", "drafts:correct"}},
          {"iss", issuer}, {"aud", json::array({"other-service", audience})},
          {"exp", now + 600}, {"iat", now}};
}

jwt_rules default_rules() { return {issuer, audience, 30s}; }

jwt_key hs_key() { return {"hs", "HS256", secret_a}; }

jwt_verifier hs_verifier(jwt_rules rules = default_rules()) { return jwt_verifier{{hs_key()}, rules}; }

jwt_error error_of(const std::variant<jwt_claims, jwt_error>& result) {
  if (const auto* error = std::get_if<jwt_error>(&result)) return *error;
  ADD_FAILURE() << "token was accepted";
  return jwt_error::malformed;
}

jwt_claims claims_of(const std::variant<jwt_claims, jwt_error>& result) {
  if (const auto* error = std::get_if<jwt_error>(&result)) {
    ADD_FAILURE() << "token was refused: " << describe(*error);
    return {};
  }
  return std::get<jwt_claims>(result);
}

// A token put together by hand, for the shapes jwt_sign never makes.
std::string assemble(const std::string& header, const std::string& payload, const std::string& signature) {
  return base64url_encode(header) + "." + base64url_encode(payload) + "." + base64url_encode(signature);
}

std::string hmac_sha256(const std::string& secret, const std::string& input) {
  unsigned char out[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

// An HS256 token signed with whatever bytes the caller chooses, bypassing key checks.
std::string forge_hs256(const std::string& header, const std::string& payload, const std::string& secret) {
  const std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

struct token_segments {
  std::string header, payload, signature;
};

token_segments split(const std::string& token) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  return {token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1)};
}

std::string join(const token_segments& s) { return s.header + "." + s.payload + "." + s.signature; }

// ---------------------------------------------------------------------------------------------
// base64url

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode(std::string{"\xfb\xff"}), "-_8");
}

TEST(Base64Url, DecodesWhatItEncodes) {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
  for (std::size_t length = 0; length <= all_bytes.size(); length += 37) {
    const auto decoded = base64url_decode(base64url_encode(all_bytes.substr(0, length)));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, all_bytes.substr(0, length));
  }
}

TEST(Base64Url, RefusesPaddingForeignCharactersAndNonCanonicalSpellings) {
  EXPECT_FALSE(base64url_decode("Zg=="));
  EXPECT_FALSE(base64url_decode("Zm8="));
  EXPECT_FALSE(base64url_decode("+_8"));   // '+' is plain base64
  EXPECT_FALSE(base64url_decode("-/8"));   // '/' is plain base64
  EXPECT_FALSE(base64url_decode("Zm 9v"));
  EXPECT_FALSE(base64url_decode("Z"));     // 6 bits are no byte
  EXPECT_FALSE(base64url_decode("Zh"));    // "Zg" with stray low bits
  EXPECT_FALSE(base64url_decode("Zm9"));   // "Zm8" with stray low bits
  EXPECT_FALSE(base64url_decode(std::string{"Zm\0v", 4}));
}

// ---------------------------------------------------------------------------------------------
// Round trips

struct alg_case {
  const char* name;
  jwt_key signing;
  jwt_key verifying;
  std::size_t signature_bytes;
};

std::vector<alg_case> alg_cases() {
  return {
      {"HS256", {"k", "HS256", secret_a}, {"k", "HS256", secret_a}, 32},
      {"HS384", {"k", "HS384", secret_48}, {"k", "HS384", secret_48}, 48},
      {"HS512", {"k", "HS512", secret_64}, {"k", "HS512", secret_64}, 64},
      {"RS256", {"k", "RS256", testdata("rs256_private.pem")}, {"k", "RS256", testdata("rs256_public.pem")}, 256},
      {"ES256", {"k", "ES256", testdata("es256_private.pem")}, {"k", "ES256", testdata("es256_public.pem")}, 64},
  };
}

TEST(JwtRoundTrip, EverySupportedAlgVerifiesWhatItSigns) {
  for (const auto& c : alg_cases()) {
    SCOPED_TRACE(c.name);
    const std::string token = jwt_sign(c.signing, user_claims().dump());
    const auto header = json::parse(*base64url_decode(split(token).header));
    EXPECT_EQ(header, (json{{"alg", c.name}, {"typ", "JWT"}, {"kid", "k"}}));
    EXPECT_EQ(base64url_decode(split(token).signature)->size(), c.signature_bytes);

    const jwt_verifier verifier{{c.verifying}, default_rules()};
    const auto& claims = claims_of(verifier.verify(token, now));
    EXPECT_EQ(claims.subject, "user-17");
    EXPECT_EQ(claims.role, "qa");
    EXPECT_EQ(claims.issuer, issuer);
    EXPECT_EQ(claims.audience, std::vector<std::string>{audience});
    EXPECT_EQ(claims.kid, "k");
    EXPECT_EQ(claims.expires_at, now + 600);
    EXPECT_EQ(claims.not_before, now - 10);
    EXPECT_EQ(claims.issued_at, now - 10);
  }
}

TEST(JwtRoundTrip, AsymmetricKeysAlsoVerifyWithTheirPrivatePem) {
  const jwt_verifier rs{{{"k", "RS256", testdata("rs256_private.pem")}}, default_rules()};
  const jwt_verifier es{{{"k", "ES256", testdata("es256_private.pem")}}, default_rules()};
  EXPECT_EQ(claims_of(rs.verify(jwt_sign({"k", "RS256", testdata("rs256_private.pem")}, user_claims().dump()), now)).subject, "user-17");
  EXPECT_EQ(claims_of(es.verify(jwt_sign({"k", "ES256", testdata("es256_private.pem")}, user_claims().dump()), now)).subject, "user-17");
}

TEST(JwtRoundTrip, ServiceClaimsCarryServiceIdPermissionsAndAudienceArray) {
  const auto& claims = claims_of(hs_verifier().verify(jwt_sign(hs_key(), service_claims().dump()), now));
  EXPECT_EQ(claims.subject, "svc-drafting");
  EXPECT_EQ(claims.service_id, "drafting-pipeline");
  EXPECT_EQ(claims.permissions, (std::vector<std::string>{"buckets:read", "drafts:correct"}));
  EXPECT_EQ(claims.audience, (std::vector<std::string>{"other-service", audience}));
  EXPECT_TRUE(claims.role.empty());
  EXPECT_EQ(claims.not_before, 0);
}

TEST(JwtSign, OmitsKidWhenTheKeyHasNone) {
  const std::string token = jwt_sign({"", "HS256", secret_a}, user_claims().dump());
  EXPECT_EQ(json::parse(*base64url_decode(split(token).header)), (json{{"alg", "HS256"}, {"typ", "JWT"}}));
}

TEST(JwtSign, RefusesClaimsThatAreNotAJsonObject) {
  EXPECT_THROW(jwt_sign(hs_key(), "[1,2]"), std::invalid_argument);
  EXPECT_THROW(jwt_sign(hs_key(), "{\"sub\":"), std::invalid_argument);
}

TEST(JwtSign, RefusesPublicKeysAndBadSecrets) {
  EXPECT_THROW(jwt_sign({"k", "RS256", testdata("rs256_public.pem")}, "{}"), std::invalid_argument);
  EXPECT_THROW(jwt_sign({"k", "HS256", "short"}, "{}"), std::invalid_argument);
  EXPECT_THROW(jwt_sign({"k", "none", ""}, "{}"), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Time: exp, nbf, iat and the leeway at its exact boundaries (leeway 30 s)

std::variant<jwt_claims, jwt_error> verify_with(json claims, std::int64_t at = now) {
  return hs_verifier().verify(jwt_sign(hs_key(), claims.dump()), at);
}

TEST(JwtTime, ExpiredTokenIsRefused) {
  auto claims = user_claims();
  claims["exp"] = now - 3600;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::expired);
}

TEST(JwtTime, ExpHonoursLeewayUpToButExcludingTheBoundary) {
  auto claims = user_claims();
  claims["exp"] = now;
  EXPECT_NO_FATAL_FAILURE(claims_of(verify_with(claims, now + 29)));
  EXPECT_EQ(error_of(verify_with(claims, now + 30)), jwt_error::expired);
}

TEST(JwtTime, WithoutLeewayATokenIsDeadAtItsExpSecond) {
  auto claims = user_claims();
  claims["exp"] = now;
  const jwt_verifier strict{{hs_key()}, {issuer, audience, 0s}};
  const std::string token = jwt_sign(hs_key(), claims.dump());
  EXPECT_EQ(claims_of(strict.verify(token, now - 1)).expires_at, now);
  EXPECT_EQ(error_of(strict.verify(token, now)), jwt_error::expired);
}

TEST(JwtTime, NotBeforeInTheFutureIsRefusedBeyondLeeway) {
  auto claims = user_claims();
  claims["nbf"] = now + 30;
  claims["iat"] = now;
  EXPECT_EQ(claims_of(verify_with(claims)).not_before, now + 30);
  claims["nbf"] = now + 31;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::not_yet_valid);
}

TEST(JwtTime, IssuedInTheFutureIsRefusedBeyondLeeway) {
  auto claims = user_claims();
  claims.erase("nbf");
  claims["iat"] = now + 30;
  EXPECT_EQ(claims_of(verify_with(claims)).issued_at, now + 30);
  claims["iat"] = now + 31;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::issued_in_future);
}

TEST(JwtTime, FractionalDatesRoundTowardRefusal) {
  const jwt_verifier strict{{hs_key()}, {issuer, audience, 0s}};
  auto claims = user_claims();
  claims["exp"] = static_cast<double>(now) + 0.9;   // counts as `now`: already dead
  EXPECT_EQ(error_of(strict.verify(jwt_sign(hs_key(), claims.dump()), now)), jwt_error::expired);
  claims = user_claims();
  claims["nbf"] = static_cast<double>(now) + 0.1;   // counts as now + 1
  EXPECT_EQ(error_of(strict.verify(jwt_sign(hs_key(), claims.dump()), now)), jwt_error::not_yet_valid);
}

TEST(JwtTime, ExtremeDatesAndClocksDoNotOverflow) {
  auto claims = user_claims();
  claims["exp"] = 253402300799;   // 9999-12-31
  // the default lifetime bound refuses it; the arithmetic below is checked without one
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::lifetime_too_long);
  const jwt_verifier unbounded{{hs_key()}, {issuer, audience, 30s, 0s}};
  EXPECT_NO_FATAL_FAILURE(claims_of(unbounded.verify(jwt_sign(hs_key(), claims.dump()), now)));
  claims.erase("iat");
  EXPECT_NO_FATAL_FAILURE(claims_of(unbounded.verify(jwt_sign(hs_key(), claims.dump()), now)));
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::lifetime_too_long);
  claims = user_claims();
  claims["exp"] = 253402300799;
  EXPECT_EQ(error_of(verify_with(claims, INT64_MAX)), jwt_error::expired);
  EXPECT_EQ(error_of(verify_with(user_claims(), INT64_MIN)), jwt_error::not_yet_valid);
  claims["exp"] = 253402300800;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::malformed);
  claims["exp"] = -1;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::malformed);
  claims["exp"] = 1e300;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::malformed);
}

TEST(JwtTime, LifetimeFromIatIsBoundedByDefaultTo24Hours) {
  auto claims = user_claims();
  claims["iat"] = now - 10;
  claims["nbf"] = now - 10;
  claims["exp"] = now - 10 + 24 * 3600;   // exactly the bound
  EXPECT_NO_FATAL_FAILURE(claims_of(verify_with(claims)));
  claims["exp"] = now - 10 + 24 * 3600 + 1;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::lifetime_too_long);
  // an old iat does not help: the lifetime is exp - iat, whatever the clock says now
  claims["iat"] = now - 48 * 3600;
  claims["exp"] = now + 600;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::lifetime_too_long);
}

TEST(JwtTime, LifetimeIsConfigurable) {
  const jwt_verifier short_lived{{hs_key()}, {issuer, audience, 30s, 300s}};
  auto claims = user_claims();   // iat now - 10, exp now + 600: 610 s
  EXPECT_EQ(error_of(short_lived.verify(jwt_sign(hs_key(), claims.dump()), now)),
            jwt_error::lifetime_too_long);
  claims["exp"] = now + 290;
  EXPECT_NO_FATAL_FAILURE(claims_of(short_lived.verify(jwt_sign(hs_key(), claims.dump()), now)));
  EXPECT_THROW((jwt_verifier{{hs_key()}, {issuer, audience, 30s, -1s}}), std::invalid_argument);
}

TEST(JwtTime, WithoutIatTheBoundCountsFromNow) {
  auto claims = user_claims();
  claims.erase("iat");
  claims["exp"] = now + 24 * 3600 + 30;   // the bound plus leeway
  EXPECT_NO_FATAL_FAILURE(claims_of(verify_with(claims)));
  claims["exp"] = now + 24 * 3600 + 31;
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::lifetime_too_long);
  // the same token becomes acceptable once its remaining life is within the bound
  EXPECT_NO_FATAL_FAILURE(claims_of(verify_with(claims, now + 1)));
}

// ---------------------------------------------------------------------------------------------
// Issuer and audience

TEST(JwtClaims, WrongIssuerIsRefused) {
  auto claims = user_claims();
  claims["iss"] = "https://evil.example";
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::wrong_issuer);
}

TEST(JwtClaims, MissingIssuerIsAMissingClaimWhenOneIsConfigured) {
  auto claims = user_claims();
  claims.erase("iss");
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
  const jwt_verifier any_issuer{{hs_key()}, {"", audience, 30s}};
  EXPECT_NO_FATAL_FAILURE(claims_of(any_issuer.verify(jwt_sign(hs_key(), claims.dump()), now)));
}

TEST(JwtClaims, WrongAudienceIsRefused) {
  auto claims = user_claims();
  claims["aud"] = "billing";
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::wrong_audience);
  claims["aud"] = json::array({"billing", "reports"});
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::wrong_audience);
  claims["aud"] = json::array();
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
  claims.erase("aud");
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
}

TEST(JwtClaims, AudienceArrayContainingOursIsAccepted) {
  auto claims = user_claims();
  claims["aud"] = json::array({"billing", audience, "reports"});
  EXPECT_EQ(claims_of(verify_with(claims)).audience.size(), 3u);
}

TEST(JwtClaims, AnAudienceIsRefusedByAVerifierThatExpectsNone) {
  const jwt_verifier no_audience{{hs_key()}, {issuer, "", 30s}};
  EXPECT_EQ(error_of(no_audience.verify(jwt_sign(hs_key(), user_claims().dump()), now)),
            jwt_error::wrong_audience);
  auto claims = user_claims();
  claims.erase("aud");
  EXPECT_NO_FATAL_FAILURE(claims_of(no_audience.verify(jwt_sign(hs_key(), claims.dump()), now)));
}

TEST(JwtClaims, ExpAndSubAreRequired) {
  auto claims = user_claims();
  claims.erase("exp");
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
  claims = user_claims();
  claims.erase("sub");
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
  claims["sub"] = "";
  EXPECT_EQ(error_of(verify_with(claims)), jwt_error::missing_claim);
}

TEST(JwtClaims, ClaimsOfTheWrongTypeAreMalformed) {
  const std::vector<std::pair<std::string, json>> wrong = {
      {"exp", "1700000600"}, {"nbf", true},   {"iat", json::array()}, {"sub", 17},
      {"iss", nullptr},      {"aud", 5},      {"aud", {"x", 1}},      {"role", json::object()},
      {"service_id", 3.5},   {"permissions", "buckets:read"},          {"permissions", {"a", false}}};
  for (const auto& [name, value] : wrong) {
    SCOPED_TRACE(name + " = " + value.dump());
    auto claims = user_claims();
    claims[name] = value;
    EXPECT_EQ(error_of(verify_with(claims)), jwt_error::malformed);
  }
}

// ---------------------------------------------------------------------------------------------
// Algorithms and keys

TEST(JwtAlg, AlgNoneIsRefusedWhateverItsSpelling) {
  for (const char* alg : {"none", "None", "NONE", ""}) {
    SCOPED_TRACE(alg);
    const json header = {{"alg", alg}, {"typ", "JWT"}, {"kid", "hs"}};
    EXPECT_EQ(error_of(hs_verifier().verify(assemble(header.dump(), user_claims().dump(), ""), now)),
              jwt_error::unsupported_alg);
    const json no_kid = {{"alg", alg}};
    EXPECT_EQ(error_of(hs_verifier().verify(assemble(no_kid.dump(), user_claims().dump(), ""), now)),
              jwt_error::unsupported_alg);
  }
}

TEST(JwtAlg, TokenAlgMustEqualTheKeysAlg) {
  // Signed with a real HS512 secret under the kid of an HS256 key.
  const std::string token = jwt_sign({"hs", "HS512", secret_64}, user_claims().dump());
  EXPECT_EQ(error_of(hs_verifier().verify(token, now)), jwt_error::alg_mismatch);
  const std::string rs = jwt_sign({"hs", "RS256", testdata("rs256_private.pem")}, user_claims().dump());
  EXPECT_EQ(error_of(hs_verifier().verify(rs, now)), jwt_error::alg_mismatch);
}

TEST(JwtAlg, Hs256SignedWithTheRsaPublicKeyPemIsRefused) {
  const std::string public_pem = testdata("rs256_public.pem");
  const jwt_verifier verifier{{{"rs", "RS256", public_pem}}, default_rules()};
  const json header = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "rs"}};
  EXPECT_EQ(error_of(verifier.verify(forge_hs256(header.dump(), user_claims().dump(), public_pem), now)),
            jwt_error::alg_mismatch);
  const json no_kid = {{"alg", "HS256"}, {"typ", "JWT"}};
  EXPECT_EQ(error_of(verifier.verify(forge_hs256(no_kid.dump(), user_claims().dump(), public_pem), now)),
            jwt_error::alg_mismatch);
  // Nor can the PEM be configured as an HMAC secret by mistake.
  EXPECT_THROW((jwt_verifier{{{"rs", "HS256", public_pem}}, default_rules()}), std::invalid_argument);
}

TEST(JwtAlg, UnknownAlgsAreUnsupported) {
  for (const char* alg : {"HS1", "RS512", "PS256", "ES384", "EdDSA", "hs256"}) {
    SCOPED_TRACE(alg);
    const json header = {{"alg", alg}, {"kid", "hs"}};
    EXPECT_EQ(error_of(hs_verifier().verify(forge_hs256(header.dump(), user_claims().dump(), secret_a), now)),
              jwt_error::unsupported_alg);
  }
}

TEST(JwtKeys, UnknownKidIsRefused) {
  const std::string token = jwt_sign({"retired", "HS256", secret_a}, user_claims().dump());
  EXPECT_EQ(error_of(hs_verifier().verify(token, now)), jwt_error::unknown_kid);
}

TEST(JwtKeys, TokenWithoutKidIsAcceptedOnlyWhenOneKeyIsConfigured) {
  const std::string token = jwt_sign({"", "HS256", secret_a}, user_claims().dump());
  EXPECT_EQ(claims_of(hs_verifier().verify(token, now)).kid, "hs");
  const jwt_verifier two{{{"a", "HS256", secret_a}, {"b", "HS256", secret_b}}, default_rules()};
  EXPECT_EQ(error_of(two.verify(token, now)), jwt_error::unknown_kid);
}

TEST(JwtKeys, RotationAcceptsBothKidsThenOnlyTheNewOne) {
  const jwt_key old_key{"2026-10", "HS256", secret_a};
  const jwt_key new_key{"2026-11", "RS256", testdata("rs256_private.pem")};
  const jwt_verifier during{{old_key, {"2026-11", "RS256", testdata("rs256_public.pem")}}, default_rules()};
  const std::string old_token = jwt_sign(old_key, user_claims().dump());
  const std::string new_token = jwt_sign(new_key, user_claims().dump());
  EXPECT_EQ(claims_of(during.verify(old_token, now)).kid, "2026-10");
  EXPECT_EQ(claims_of(during.verify(new_token, now)).kid, "2026-11");
  // A kid picks the key; it does not make another key's signature acceptable.
  EXPECT_EQ(error_of(during.verify(jwt_sign({"2026-10", "HS256", secret_b}, user_claims().dump()), now)),
            jwt_error::bad_signature);

  const jwt_verifier after{{{"2026-11", "RS256", testdata("rs256_public.pem")}}, default_rules()};
  EXPECT_EQ(error_of(after.verify(old_token, now)), jwt_error::unknown_kid);
  EXPECT_NO_FATAL_FAILURE(claims_of(after.verify(new_token, now)));
}

TEST(JwtKeys, BadKeysAreRefusedAtConstruction) {
  const auto rules = default_rules();
  EXPECT_THROW((jwt_verifier{{}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "none", ""}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "PS256", testdata("rs256_public.pem")}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "HS256", secret_a.substr(1)}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "HS384", secret_a}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "HS512", secret_48}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "RS256", "not a pem"}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "RS256", "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"}}, rules}),
               std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "RS256", testdata("rsa1024_public.pem")}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "RS256", testdata("es256_public.pem")}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "ES256", testdata("rs256_public.pem")}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"k", "ES256", testdata("ec_p384_public.pem")}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"a", "HS256", secret_a}, {"a", "HS256", secret_b}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{{"a", "HS256", secret_a}, {"", "HS256", secret_b}}, rules}), std::invalid_argument);
  EXPECT_THROW((jwt_verifier{{hs_key()}, {issuer, audience, -1s}}), std::invalid_argument);
  EXPECT_NO_THROW((jwt_verifier{{{"k", "HS384", secret_48}, {"l", "HS512", secret_64}}, rules}));
}

TEST(JwtKeys, AKeyErrorDoesNotEchoTheSecret) {
  const std::string secret = "short-but-secret";
  try {
    jwt_verifier{{{"k", "HS256", secret}}, default_rules()};
    FAIL() << "short secret accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string{e.what()}.find(secret), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Tampering and shape

TEST(JwtShape, TamperedPayloadIsRefusedForEveryAlg) {
  for (const auto& c : alg_cases()) {
    SCOPED_TRACE(c.name);
    const jwt_verifier verifier{{c.verifying}, default_rules()};
    auto parts = split(jwt_sign(c.signing, user_claims().dump()));
    auto promoted = user_claims();
    promoted["role"] = "admin";
    parts.payload = base64url_encode(promoted.dump());
    EXPECT_EQ(error_of(verifier.verify(join(parts), now)), jwt_error::bad_signature);
  }
}

TEST(JwtShape, TamperedHeaderIsRefused) {
  auto parts = split(jwt_sign(hs_key(), user_claims().dump()));
  parts.header = base64url_encode(json{{"alg", "HS256"}, {"kid", "hs"}, {"typ", "JWT"}, {"x", 1}}.dump());
  EXPECT_EQ(error_of(hs_verifier().verify(join(parts), now)), jwt_error::bad_signature);
}

TEST(JwtShape, TamperedOrTruncatedSignatureIsRefusedForEveryAlg) {
  for (const auto& c : alg_cases()) {
    SCOPED_TRACE(c.name);
    const jwt_verifier verifier{{c.verifying}, default_rules()};
    const auto parts = split(jwt_sign(c.signing, user_claims().dump()));
    auto flipped = parts;
    flipped.signature[5] = flipped.signature[5] == 'A' ? 'B' : 'A';
    EXPECT_EQ(error_of(verifier.verify(join(flipped), now)), jwt_error::bad_signature);
    auto truncated = parts;
    truncated.signature = base64url_encode(base64url_decode(parts.signature)->substr(1));
    EXPECT_EQ(error_of(verifier.verify(join(truncated), now)), jwt_error::bad_signature);
    auto empty = parts;
    empty.signature.clear();
    EXPECT_EQ(error_of(verifier.verify(join(empty), now)), jwt_error::bad_signature);
  }
}

TEST(JwtShape, PaddingIsRefused) {
  const auto parts = split(jwt_sign(hs_key(), user_claims().dump()));
  ASSERT_EQ(parts.signature.size() % 4, 3u);   // 32 bytes: one pad character would follow
  auto padded = parts;
  padded.signature += "=";
  EXPECT_EQ(error_of(hs_verifier().verify(join(padded), now)), jwt_error::malformed);
  const std::string header = R"({"alg":"HS256","kid":"hs"})";   // 26 bytes: pads to "=="
  const std::string token = forge_hs256(header, user_claims().dump(), secret_a);
  EXPECT_NO_FATAL_FAILURE(claims_of(hs_verifier().verify(token, now)));
  auto padded_header = split(token);
  padded_header.header += "==";
  EXPECT_EQ(error_of(hs_verifier().verify(join(padded_header), now)), jwt_error::malformed);
}

TEST(JwtShape, CharactersOutsideBase64UrlAreRefused) {
  const std::string token = jwt_sign(hs_key(), user_claims().dump());
  for (const char* bad : {"+", "/", " ", "\n", "\x80", "%"}) {
    SCOPED_TRACE(testing::PrintToString(std::string{bad}));
    for (std::size_t at : {std::size_t{3}, token.find('.') + 3, token.size() - 3}) {
      std::string broken = token;
      broken[at] = bad[0];
      EXPECT_EQ(error_of(hs_verifier().verify(broken, now)), jwt_error::malformed);
    }
  }
  std::string with_nul = token;
  with_nul.insert(4, 1, '\0');
  EXPECT_EQ(error_of(hs_verifier().verify(with_nul, now)), jwt_error::malformed);
}

TEST(JwtShape, RespelledSignatureWithStrayBitsIsRefused) {
  auto parts = split(jwt_sign(hs_key(), user_claims().dump()));
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char& last = parts.signature.back();
  last = alphabet[alphabet.find(last) ^ 1];   // same decoded bytes, other spelling
  EXPECT_EQ(error_of(hs_verifier().verify(join(parts), now)), jwt_error::malformed);
}

TEST(JwtShape, AnythingButThreeSegmentsIsMalformed) {
  const std::string token = jwt_sign(hs_key(), user_claims().dump());
  const auto parts = split(token);
  for (const std::string& bad :
       {std::string{}, std::string{"."}, std::string{".."}, std::string{"..."}, parts.header,
        parts.header + "." + parts.payload, token + ".", token + "." + parts.signature,
        "." + parts.payload + "." + parts.signature, parts.header + ".." + parts.signature}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of(hs_verifier().verify(bad, now)), jwt_error::malformed);
  }
}

TEST(JwtShape, HeaderMustBeAJsonObjectWithAStringAlg) {
  for (const std::string& header : {std::string{"not json"}, std::string{"[\"HS256\"]"}, std::string{"{}"},
                                   std::string{R"({"alg":256,"kid":"hs"})"}, std::string{R"({"alg":"HS256","kid":7})"},
                                   std::string{R"({"alg":"HS256","kid":"hs")"}}) {
    SCOPED_TRACE(header);
    EXPECT_EQ(error_of(hs_verifier().verify(forge_hs256(header, user_claims().dump(), secret_a), now)),
              jwt_error::malformed);
  }
}

TEST(JwtShape, CriticalHeaderExtensionsAreRefused) {
  const std::string header = R"({"alg":"HS256","kid":"hs","crit":["b64"],"b64":false})";
  EXPECT_EQ(error_of(hs_verifier().verify(forge_hs256(header, user_claims().dump(), secret_a), now)),
            jwt_error::malformed);
}

TEST(JwtShape, SignedPayloadThatIsNotAJsonObjectIsMalformed) {
  const std::string header = R"({"alg":"HS256","kid":"hs"})";
  for (const std::string& payload : {std::string{"[]"}, std::string{"\"sub\""}, std::string{"{\"sub\":"},
                                    std::string{"{\"sub\":\"\xff\"}"}}) {
    SCOPED_TRACE(payload);
    EXPECT_EQ(error_of(hs_verifier().verify(forge_hs256(header, payload, secret_a), now)), jwt_error::malformed);
  }
}

TEST(JwtShape, TokensLongerThan8KiBAreRefused) {
  // Grow a signed token a byte of claims at a time and watch it cross the limit.
  std::string longest_accepted, shortest_refused;
  for (std::size_t pad = 5900; pad < 6300 && shortest_refused.empty(); ++pad) {
    auto claims = user_claims();
    claims["pad"] = std::string(pad, 'p');
    const std::string token = jwt_sign(hs_key(), claims.dump());
    if (token.size() <= max_token_size) {
      longest_accepted = token;
    } else {
      shortest_refused = token;
    }
  }
  ASSERT_FALSE(longest_accepted.empty());
  ASSERT_FALSE(shortest_refused.empty());
  EXPECT_GE(longest_accepted.size(), max_token_size - 3);
  EXPECT_NO_FATAL_FAILURE(claims_of(hs_verifier().verify(longest_accepted, now)));
  EXPECT_EQ(error_of(hs_verifier().verify(shortest_refused, now)), jwt_error::malformed);
  EXPECT_EQ(error_of(hs_verifier().verify(std::string(1 << 20, 'A'), now)), jwt_error::malformed);
}

TEST(JwtShape, DeeplyNestedJsonIsHandled) {
  const std::string nested = R"({"alg":"HS256","kid":"hs","x":)" + std::string(3000, '[') + std::string(3000, ']') + "}";
  EXPECT_EQ(error_of(hs_verifier().verify(forge_hs256(nested, "{}", secret_a), now)), jwt_error::missing_claim);
}

// ---------------------------------------------------------------------------------------------
// Other properties the gateway relies on

TEST(JwtErrors, EveryErrorHasItsOwnShortDescription) {
  std::set<std::string_view> seen;
  for (int e = static_cast<int>(jwt_error::malformed); e <= static_cast<int>(jwt_error::lifetime_too_long); ++e) {
    const auto text = describe(static_cast<jwt_error>(e));
    EXPECT_FALSE(text.empty());
    EXPECT_LT(text.size(), 80u);
    EXPECT_TRUE(seen.insert(text).second) << text;
  }
}

TEST(JwtOpenSsl, FailuresLeaveNoErrorOnTheThreadsQueue) {
  ERR_clear_error();
  EXPECT_THROW((jwt_verifier{{{"k", "RS256", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}, default_rules()}),
               std::invalid_argument);
  const jwt_verifier rs{{{"k", "RS256", testdata("rs256_public.pem")}}, default_rules()};
  const jwt_verifier es{{{"k", "ES256", testdata("es256_public.pem")}}, default_rules()};
  auto rs_token = split(jwt_sign({"k", "RS256", testdata("rs256_private.pem")}, user_claims().dump()));
  rs_token.signature = base64url_encode(std::string(256, '\x7f'));
  EXPECT_EQ(error_of(rs.verify(join(rs_token), now)), jwt_error::bad_signature);
  auto es_token = split(jwt_sign({"k", "ES256", testdata("es256_private.pem")}, user_claims().dump()));
  es_token.signature = base64url_encode(std::string(64, '\0'));
  EXPECT_EQ(error_of(es.verify(join(es_token), now)), jwt_error::bad_signature);
  EXPECT_EQ(ERR_peek_error(), 0ul);
}

TEST(JwtThreads, OneVerifierServesSeveralThreads) {
  const jwt_verifier verifier{{hs_key(), {"rs", "RS256", testdata("rs256_public.pem")}}, default_rules()};
  const std::string hs_token = jwt_sign(hs_key(), user_claims().dump());
  const std::string rs_token = jwt_sign({"rs", "RS256", testdata("rs256_private.pem")}, user_claims().dump());
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, copy = verifier] {
      for (int i = 0; i < 200; ++i) {
        if (std::holds_alternative<jwt_claims>(copy.verify(hs_token, now))) ++accepted;
        if (std::holds_alternative<jwt_claims>(verifier.verify(i % 10 == 0 ? rs_token : hs_token, now))) ++accepted;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), 4 * 200 * 2);
}

// ---------------------------------------------------------------------------------------------
// Keyring files

TEST(JwtKeyring, ReadsHmacAndAsymmetricEntries) {
  const json ring = {{"keys",
                      {{{"kid", "k1"}, {"alg", "HS256"}, {"secret", base64url_encode(secret_a)}},
                       {{"kid", "k2"}, {"alg", "HS384"}, {"secret", base64url_encode(secret_48)}},
                       {{"kid", "k3"},
                        {"alg", "RS256"},
                        {"public_pem", testdata("rs256_public.pem")},
                        {"private_pem", testdata("rs256_private.pem")}}}}};
  const auto for_verify = parse_keyring(ring.dump(), false);
  ASSERT_TRUE(std::holds_alternative<std::vector<jwt_key>>(for_verify)) << std::get<std::string>(for_verify);
  const auto& keys = std::get<std::vector<jwt_key>>(for_verify);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].kid, "k1");
  EXPECT_EQ(keys[0].alg, "HS256");
  EXPECT_EQ(keys[0].material, secret_a);
  EXPECT_EQ(keys[2].material, testdata("rs256_public.pem"));

  const auto for_sign = parse_keyring(ring.dump(), true);
  ASSERT_TRUE(std::holds_alternative<std::vector<jwt_key>>(for_sign));
  const auto& signing = std::get<std::vector<jwt_key>>(for_sign);
  EXPECT_EQ(signing[2].material, testdata("rs256_private.pem"));
  const jwt_verifier verifier{keys, default_rules()};
  EXPECT_EQ(claims_of(verifier.verify(jwt_sign(signing[2], user_claims().dump()), now)).kid, "k3");
}

TEST(JwtKeyring, AcceptsPaddedSecretsAndPrivateOnlyPemsForVerifying) {
  const std::string padded = base64url_encode(secret_a) + "=";   // 32 bytes: 43 chars + 1 pad
  const json ring = {{"keys",
                      {{{"kid", "k1"}, {"alg", "HS256"}, {"secret", padded}},
                       {{"kid", "k2"}, {"alg", "ES256"}, {"private_pem", testdata("es256_private.pem")}}}}};
  const auto parsed = parse_keyring(ring.dump(), false);
  ASSERT_TRUE(std::holds_alternative<std::vector<jwt_key>>(parsed)) << std::get<std::string>(parsed);
  EXPECT_EQ(std::get<std::vector<jwt_key>>(parsed)[0].material, secret_a);
}

TEST(JwtKeyring, ErrorsNameTheEntryButNeverTheSecret) {
  const std::string short_secret = base64url_encode("sixteen-byte-key");
  const json ring = {{"keys",
                      {{{"kid", "good"}, {"alg", "HS256"}, {"secret", base64url_encode(secret_a)}},
                       {{"kid", "weak"}, {"alg", "HS256"}, {"secret", short_secret}}}}};
  const auto parsed = parse_keyring(ring.dump(), false);
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  const auto& message = std::get<std::string>(parsed);
  EXPECT_NE(message.find("keys[1]"), std::string::npos) << message;
  EXPECT_NE(message.find("weak"), std::string::npos) << message;
  EXPECT_EQ(message.find(short_secret), std::string::npos) << message;
  EXPECT_EQ(message.find("sixteen"), std::string::npos) << message;
}

TEST(JwtKeyring, RefusesBrokenRings) {
  const auto error_for = [](const std::string& text, bool want_private = false) {
    const auto parsed = parse_keyring(text, want_private);
    return std::holds_alternative<std::string>(parsed) ? std::get<std::string>(parsed) : std::string{};
  };
  const std::string s = base64url_encode(secret_a);
  EXPECT_FALSE(error_for("").empty());
  EXPECT_FALSE(error_for("[]").empty());
  EXPECT_FALSE(error_for(R"({"keys":[]})").empty());
  EXPECT_FALSE(error_for(R"({"keys":[{"kid":"a","alg":"HS256"}]})").empty());
  EXPECT_FALSE(error_for(R"({"keys":[{"kid":"a","alg":"HS256","secret":"not*base64"}]})").empty());
  EXPECT_FALSE(error_for(R"({"keys":[{"kid":"a","alg":"none","secret":")" + s + R"("}]})").empty());
  EXPECT_FALSE(error_for(R"({"keys":[{"kid":"a","alg":"HS256","secret":")" + s + R"("},)"
                         R"({"kid":"a","alg":"HS256","secret":")" + s + R"("}]})").empty());
  EXPECT_FALSE(error_for(R"({"keys":[{"kid":"a","alg":"HS256","secret":")" + s + R"("},)"
                         R"({"alg":"HS256","secret":")" + s + R"("}]})").empty());
  const json public_only = {{"keys", {{{"kid", "r"}, {"alg", "RS256"}, {"public_pem", testdata("rs256_public.pem")}}}}};
  EXPECT_TRUE(error_for(public_only.dump()).empty());
  EXPECT_NE(error_for(public_only.dump(), true).find("private_pem"), std::string::npos);
  const json swapped = {{"keys", {{{"kid", "r"}, {"alg", "RS256"}, {"private_pem", testdata("rs256_public.pem")}}}}};
  EXPECT_FALSE(error_for(swapped.dump(), true).empty());
}

}  // namespace
