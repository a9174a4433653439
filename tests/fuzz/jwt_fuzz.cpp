// libFuzzer target for the JWT core. The first byte picks what the rest of the input is:
//   even: a token, verified as the gateway would verify an Authorization header;
//   odd:  a claims payload, signed with the keyring's HS256 key and then verified, so the
//         fuzzer reaches the claims checks that a signature otherwise guards.
// Build: -DSBM_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt). Seeds: gateway/auth/testdata/jwt_fuzz_seeds/ (first
// byte '0' = token, '1' = claims).

#include "gateway/auth/jwt.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <variant>

namespace {

using namespace sbm::auth;

constexpr std::int64_t now = 1'700'000'000;

// The public halves of gateway/auth/testdata/{rs256,es256}_private.pem.
constexpr const char* rs256_public_pem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAhbRuX/mg2yOWImVe4sav
ugLLnfeidKiPCbvdZBHlxSOFj0hXmrUHjoskRogi1He8Sj2l/RyivCWX9poLm1wr
3Cn915Lfz4TpUOtgLhSrkZasM98TuePr6sb7d7f2UaVioLBQGQPPXK/rqI9SHxEq
5o19dS4JbNrpw+BvhmRd6nLaKo0HBFKs+xsDHEYo5z9HcwP96PNd9ofTf/Et14nK
LDVdeiWthpoN6YcPsBqVQY4JM4kytex/ABzOGmhGNax/wn/SJ8AsZoK3NCRzWrn6
qHoLFnzWnm7CrhlEKYzdwdYrpBc190tyq7Tk8mg4rQ8r32HHJHgPVeG9pxGf7i9W
iwIDAQAB
-----END PUBLIC KEY-----
)";

constexpr const char* es256_public_pem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDo9jVkHpC/rBywiCpntnNqfTJ5DU
uU7ciJNIygsi1RN87o3Xk7o1+/bA563PprZkR89DFykDSRrlxi1TMO2u1w==
-----END PUBLIC KEY-----
)";

const jwt_key hs_key{"hs", "HS256", "fuzz-secret-fuzz-secret-fuzz-secret!"};

const jwt_verifier& verifier() {
  static const jwt_verifier instance{
      {hs_key, {"hs5", "HS512", std::string(64, 'k')}, {"rs", "RS256", rs256_public_pem},
       {"es", "ES256", es256_public_pem}},
      {"https://auth.sbm.test", "sbm-gateway", std::chrono::seconds{30}}};
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  if ((data[0] & 1) == 0) {
    const auto result = verifier().verify(rest, now);
    if (const auto* error = std::get_if<jwt_error>(&result)) {
      if (describe(*error).empty()) std::abort();
    }
    return 0;
  }
  std::string token;
  try {
    token = jwt_sign(hs_key, rest);
  } catch (const std::invalid_argument&) {
    return 0;   // not a JSON object: nothing to sign
  }
  const auto result = verifier().verify(token, now);
  if (const auto* error = std::get_if<jwt_error>(&result)) {
    // A token this process just signed may fail on its claims or its size (malformed), never on
    // its algorithm, key or signature.
    if (*error == jwt_error::unsupported_alg || *error == jwt_error::unknown_kid ||
        *error == jwt_error::alg_mismatch || *error == jwt_error::bad_signature)
      std::abort();
  }
  return 0;
}
