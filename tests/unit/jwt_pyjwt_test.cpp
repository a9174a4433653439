// Interoperability with an implementation nobody here wrote: PyJWT (Debian's python3-jwt).
// Tokens minted by PyJWT must be accepted or refused exactly as the spec says, and PyJWT must
// accept what jwt_sign makes. Debian's modules live under /usr/bin/python3 only (not the pyenv
// python3 on PATH).

#include "gateway/auth/base64url.hpp"
#include "gateway/auth/jwt.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace {

using namespace sbm::auth;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string python = "/usr/bin/python3";
const std::string issuer = "https://auth.sbm.test";
const std::string audience = "sbm-gateway";
const std::string secret = "pyjwt-interop-secret-0123456789abcdef";   // 37 bytes
const std::string other_secret = "another-secret-that-is-long-enough-0000";

// Single quotes keep the shell away from everything but a single quote itself.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
  return quoted + "'";
}

struct run_result {
  int status;
  std::string out;
};

run_result run_python(const std::string& script, const std::vector<std::string>& args) {
  std::string command = python + " -c " + shell_quote(script);
  for (const auto& arg : args) command += " " + shell_quote(arg);
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return {status, out};
}

bool pyjwt_available() { return run_python("import jwt, cryptography", {}).status == 0; }

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path testdata(const std::string& name) {
  return fs::path{SBM_SOURCE_DIR} / "gateway" / "auth" / "testdata" / name;
}

// argv: alg, key file, headers (JSON), payload (JSON). Prints the token.
const char* const mint_script = R"PY(
import json, sys, jwt
alg, key_path, headers, payload = sys.argv[1:5]
key = None if alg == "none" else open(key_path, "rb").read()
print(jwt.encode(json.loads(payload), key, algorithm=alg, headers=json.loads(headers)))
)PY";

// PyJWT refuses to HMAC with a PEM, so the algorithm-confusion token is made with hmac itself.
// argv: PEM file, kid, payload (JSON).
const char* const confusion_script = R"PY(
import base64, hashlib, hmac, json, sys
pem_path, kid, payload = sys.argv[1:4]
def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
body = b64(payload.encode())
signature = hmac.new(open(pem_path, "rb").read(), (header + "." + body).encode(), hashlib.sha256).digest()
print(header + "." + body + "." + b64(signature))
)PY";

// argv: alg, key file, token, audience, issuer. Prints the decoded claims as JSON, or fails.
const char* const verify_script = R"PY(
import json, sys, jwt
alg, key_path, token, audience, issuer = sys.argv[1:6]
claims = jwt.decode(token, open(key_path, "rb").read(), algorithms=[alg], audience=audience,
                    issuer=issuer, options={"require": ["exp", "iat", "sub"]})
print(json.dumps(claims, sort_keys=True))
)PY";

class PyJwtInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    available_ = pyjwt_available();
    if (!available_) return;
    dir_ = fs::temp_directory_path() / ("sbm-jwt-pyjwt-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream{dir_ / "secret", std::ios::binary} << secret;
    std::ofstream{dir_ / "other_secret", std::ios::binary} << other_secret;
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!available_) FAIL() << python << " cannot import jwt: scripts/install-deps installs python3-jwt";
  }

  static fs::path secret_file() { return dir_ / "secret"; }
  static fs::path other_secret_file() { return dir_ / "other_secret"; }

  static std::string mint(const std::string& alg, const fs::path& key, const json& payload,
                          const json& headers = json::object()) {
    const auto result = run_python(mint_script, {alg, key.string(), headers.dump(), payload.dump()});
    EXPECT_EQ(result.status, 0) << result.out;
    return result.out;
  }

  static jwt_verifier verifier() {
    return jwt_verifier{{{"hs", "HS256", secret},
                         {"rs", "RS256", read_file(testdata("rs256_public.pem"))},
                         {"es", "ES256", read_file(testdata("es256_public.pem"))}},
                        {issuer, audience, 30s}};
  }

  static inline bool available_ = false;
  static inline fs::path dir_;
};

constexpr std::int64_t now = 1'700'000'000;

json valid_claims() {
  return {{"sub", "user-17"}, {"role", "qa_lead"}, {"iss", issuer}, {"aud", audience},
          {"exp", now + 600}, {"nbf", now - 5}, {"iat", now - 5}};
}

jwt_error error_of(const std::variant<jwt_claims, jwt_error>& result) {
  if (const auto* error = std::get_if<jwt_error>(&result)) return *error;
  ADD_FAILURE() << "token was accepted";
  return jwt_error::malformed;
}

TEST_F(PyJwtInterop, ValidTokensOfEveryAlgAreAccepted) {
  struct minted {
    std::string alg, kid;
    fs::path key;
  };
  for (const auto& m : {minted{"HS256", "hs", secret_file()}, minted{"RS256", "rs", testdata("rs256_private.pem")},
                        minted{"ES256", "es", testdata("es256_private.pem")}}) {
    SCOPED_TRACE(m.alg);
    const std::string token = mint(m.alg, m.key, valid_claims(), {{"kid", m.kid}});
    const auto result = verifier().verify(token, now);
    ASSERT_TRUE(std::holds_alternative<jwt_claims>(result)) << describe(std::get<jwt_error>(result));
    const auto& claims = std::get<jwt_claims>(result);
    EXPECT_EQ(claims.subject, "user-17");
    EXPECT_EQ(claims.role, "qa_lead");
    EXPECT_EQ(claims.kid, m.kid);
    EXPECT_EQ(claims.expires_at, now + 600);
  }
}

TEST_F(PyJwtInterop, ServiceTokenWithAudienceArrayIsAccepted) {
  auto claims = valid_claims();
  claims.erase("role");
  claims["sub"] = "svc-drafting";
  claims["service_id"] = "drafting-pipeline";
  claims["permissions"] = {"buckets:read", "drafts:correct"};
  claims["aud"] = {"elsewhere", audience};
  const auto result = verifier().verify(mint("HS256", secret_file(), claims, {{"kid", "hs"}}), now);
  ASSERT_TRUE(std::holds_alternative<jwt_claims>(result)) << describe(std::get<jwt_error>(result));
  EXPECT_EQ(std::get<jwt_claims>(result).service_id, "drafting-pipeline");
  EXPECT_EQ(std::get<jwt_claims>(result).permissions, (std::vector<std::string>{"buckets:read", "drafts:correct"}));
}

TEST_F(PyJwtInterop, ExpiredTokenIsRefused) {
  auto claims = valid_claims();
  claims["exp"] = now - 31;
  EXPECT_EQ(error_of(verifier().verify(mint("HS256", secret_file(), claims, {{"kid", "hs"}}), now)),
            jwt_error::expired);
}

TEST_F(PyJwtInterop, WrongAudienceIsRefused) {
  auto claims = valid_claims();
  claims["aud"] = "billing";
  EXPECT_EQ(error_of(verifier().verify(mint("RS256", testdata("rs256_private.pem"), claims, {{"kid", "rs"}}), now)),
            jwt_error::wrong_audience);
}

TEST_F(PyJwtInterop, WrongIssuerIsRefused) {
  auto claims = valid_claims();
  claims["iss"] = "https://evil.example";
  EXPECT_EQ(error_of(verifier().verify(mint("ES256", testdata("es256_private.pem"), claims, {{"kid", "es"}}), now)),
            jwt_error::wrong_issuer);
}

TEST_F(PyJwtInterop, WrongKeyIsRefused) {
  EXPECT_EQ(error_of(verifier().verify(mint("HS256", other_secret_file(), valid_claims(), {{"kid", "hs"}}), now)),
            jwt_error::bad_signature);
  EXPECT_EQ(error_of(verifier().verify(
                mint("RS256", testdata("rs256_other_private.pem"), valid_claims(), {{"kid", "rs"}}), now)),
            jwt_error::bad_signature);
}

TEST_F(PyJwtInterop, AlgNoneIsRefused) {
  const std::string token = mint("none", "", valid_claims(), {{"kid", "hs"}});
  ASSERT_EQ(token.back(), '.');   // PyJWT's unsigned token really has an empty signature
  EXPECT_EQ(error_of(verifier().verify(token, now)), jwt_error::unsupported_alg);
}

TEST_F(PyJwtInterop, Hs256SignedWithThePublicKeyIsRefused) {
  const auto result = run_python(confusion_script, {testdata("rs256_public.pem").string(), "rs", valid_claims().dump()});
  ASSERT_EQ(result.status, 0) << result.out;
  EXPECT_EQ(error_of(verifier().verify(result.out, now)), jwt_error::alg_mismatch);
}

TEST_F(PyJwtInterop, PyJwtAcceptsWhatJwtSignMakes) {
  // PyJWT reads the real clock, so these claims are about the real now.
  const std::int64_t real_now = std::time(nullptr);
  const json claims = {{"sub", "svc-drafting"}, {"service_id", "drafting-pipeline"},
                       {"permissions", {"buckets:read"}}, {"iss", issuer}, {"aud", audience},
                       {"exp", real_now + 600}, {"iat", real_now}};
  struct signer {
    jwt_key key;
    fs::path verifying_key;
  };
  const std::string secret_48(48, 'h'), secret_64(64, 'H');
  std::ofstream{dir_ / "secret_48", std::ios::binary} << secret_48;
  std::ofstream{dir_ / "secret_64", std::ios::binary} << secret_64;
  for (const auto& s : {signer{{"hs", "HS256", secret}, secret_file()},
                        signer{{"hs384", "HS384", secret_48}, dir_ / "secret_48"},
                        signer{{"hs512", "HS512", secret_64}, dir_ / "secret_64"},
                        signer{{"rs", "RS256", read_file(testdata("rs256_private.pem"))}, testdata("rs256_public.pem")},
                        signer{{"es", "ES256", read_file(testdata("es256_private.pem"))}, testdata("es256_public.pem")}}) {
    SCOPED_TRACE(s.key.alg);
    const std::string token = jwt_sign(s.key, claims.dump());
    const auto result = run_python(verify_script, {s.key.alg, s.verifying_key.string(), token, audience, issuer});
    ASSERT_EQ(result.status, 0) << result.out;
    EXPECT_EQ(json::parse(result.out), claims);
    // The header PyJWT saw is the one jwt_sign promises.
    const auto header = json::parse(*base64url_decode(token.substr(0, token.find('.'))));
    EXPECT_EQ(header, (json{{"alg", s.key.alg}, {"typ", "JWT"}, {"kid", s.key.kid}}));
  }
}

TEST_F(PyJwtInterop, PyJwtRefusesAJwtSignTokenForAnotherAudience) {
  // Guards the check above: the verify script really does check, so its success means something.
  const std::int64_t real_now = std::time(nullptr);
  const json claims = {{"sub", "u"}, {"iss", issuer}, {"aud", "billing"}, {"exp", real_now + 600}, {"iat", real_now}};
  const auto result = run_python(verify_script, {"HS256", secret_file().string(),
                                                 jwt_sign({"hs", "HS256", secret}, claims.dump()), audience, issuer});
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.out.find("InvalidAudienceError"), std::string::npos) << result.out;
}

}  // namespace
