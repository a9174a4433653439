#include "gateway/auth/jwt_crypto.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <array>
#include <stdexcept>

namespace sbm::auth::detail {
namespace {

struct alg_traits {
  std::string_view name;
  jwt_alg alg;
  const char* digest;
  std::size_t min_secret_bytes;  // RFC 7518 3.2: an HMAC key at least as long as the hash
};

constexpr std::array<alg_traits, 5> known_algs{{
    {"HS256", jwt_alg::hs256, "SHA256", 32},
    {"HS384", jwt_alg::hs384, "SHA384", 48},
    {"HS512", jwt_alg::hs512, "SHA512", 64},
    {"RS256", jwt_alg::rs256, "SHA256", 0},
    {"ES256", jwt_alg::es256, "SHA256", 0},
}};

const alg_traits& traits_of(jwt_alg alg) {
  for (const auto& traits : known_algs)
    if (traits.alg == alg) return traits;
  throw std::logic_error("jwt_alg without traits");
}

bool is_hmac(jwt_alg alg) {
  return alg == jwt_alg::hs256 || alg == jwt_alg::hs384 || alg == jwt_alg::hs512;
}

constexpr std::size_t es256_coordinate_bytes = 32;
constexpr int min_rsa_bits = 2048;
constexpr std::size_t max_pem_bytes = 64 * 1024;

struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct mac_free {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct mac_ctx_free {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct md_ctx_free {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct ecdsa_sig_free {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using mac_ptr = std::unique_ptr<EVP_MAC, mac_free>;
using mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, mac_ctx_free>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, ecdsa_sig_free>;

// OpenSSL reports failures on a per-thread queue. Left there, they would be misread by the next
// TLS call on the same thread (SSL_get_error looks at the queue), so every entry point removes
// what it added.
class error_queue_scope {
 public:
  error_queue_scope() { ERR_set_mark(); }
  ~error_queue_scope() { ERR_pop_to_mark(); }
  error_queue_scope(const error_queue_scope&) = delete;
  error_queue_scope& operator=(const error_queue_scope&) = delete;
};

// Without a callback OpenSSL would prompt on the terminal for an encrypted key.
int refuse_passphrase(char*, int, int, void*) { return -1; }

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

bio_ptr memory_bio(std::string_view material) {
  bio_ptr bio{BIO_new_mem_buf(material.data(), static_cast<int>(material.size()))};
  if (!bio) throw std::runtime_error("out of memory reading a PEM");
  return bio;
}

pkey_ptr read_pem(std::string_view material, crypto_key::purpose use) {
  if (material.size() > max_pem_bytes) throw std::invalid_argument("PEM is too large");
  if (material.find("-----BEGIN ") == std::string_view::npos)
    throw std::invalid_argument("key material is not a PEM");
  if (use == crypto_key::purpose::verify) {
    auto bio = memory_bio(material);
    if (pkey_ptr key{PEM_read_bio_PUBKEY(bio.get(), nullptr, refuse_passphrase, nullptr)}) return key;
  }
  // A private key also verifies: its public half is derived from it.
  auto bio = memory_bio(material);
  if (pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr)}) return key;
  throw std::invalid_argument(use == crypto_key::purpose::sign
                                  ? "PEM holds no readable unencrypted private key"
                                  : "PEM holds no readable public or unencrypted private key");
}

void check_asymmetric_key(jwt_alg alg, EVP_PKEY* key) {
  if (alg == jwt_alg::rs256) {
    if (!EVP_PKEY_is_a(key, "RSA")) throw std::invalid_argument("RS256 needs an RSA key");
    if (EVP_PKEY_get_bits(key) < min_rsa_bits)
      throw std::invalid_argument("RS256 needs an RSA key of at least 2048 bits");
    return;
  }
  if (!EVP_PKEY_is_a(key, "EC")) throw std::invalid_argument("ES256 needs an EC key");
  std::array<char, 64> group{};
  std::size_t length = 0;
  if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1)
    throw std::invalid_argument("ES256 key has no named curve");
  const std::string_view name{group.data(), length};
  if (name != "prime256v1" && name != "P-256")
    throw std::invalid_argument("ES256 needs a key on curve P-256");
}

// JWS carries an ECDSA signature as r || s, each left-padded to the curve size (RFC 7518 3.4);
// OpenSSL speaks DER.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 2 * es256_coordinate_bytes) return std::nullopt;
  ecdsa_sig_ptr sig{ECDSA_SIG_new()};
  if (!sig) return std::nullopt;
  BIGNUM* r = BN_bin2bn(bytes_of(raw), es256_coordinate_bytes, nullptr);
  BIGNUM* s = BN_bin2bn(bytes_of(raw) + es256_coordinate_bytes, es256_coordinate_bytes, nullptr);
  if (!r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return std::nullopt;
  return der;
}

std::string ecdsa_der_to_raw(std::string_view der) {
  const unsigned char* in = bytes_of(der);
  ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(der.size()))};
  if (!sig) throw std::runtime_error("ES256 signing produced an unreadable signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * es256_coordinate_bytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, es256_coordinate_bytes) < 0 ||
      BN_bn2binpad(s, out + es256_coordinate_bytes, es256_coordinate_bytes) < 0)
    throw std::runtime_error("ES256 signature does not fit the curve size");
  return raw;
}

}  // namespace

std::optional<jwt_alg> parse_alg(std::string_view name) {
  for (const auto& traits : known_algs)
    if (traits.name == name) return traits.alg;
  return std::nullopt;
}

std::string_view alg_name(jwt_alg alg) { return traits_of(alg).name; }

struct crypto_key::handles {
  // HS*: keyed once; each use works on a copy, which keeps the precomputed pads and lets
  // threads share the original.
  mac_ctx_ptr keyed_mac;
  pkey_ptr asymmetric;
};

crypto_key::crypto_key(jwt_alg alg, std::string_view material, purpose use)
    : alg_{alg}, handles_{std::make_unique<handles>()} {
  error_queue_scope errors;
  const alg_traits& traits = traits_of(alg);
  if (!is_hmac(alg)) {
    handles_->asymmetric = read_pem(material, use);
    check_asymmetric_key(alg, handles_->asymmetric.get());
    return;
  }
  if (material.size() < traits.min_secret_bytes)
    throw std::invalid_argument(std::string{traits.name} + " needs a secret of at least " +
                                std::to_string(traits.min_secret_bytes) + " bytes");
  // A PEM used as an HMAC secret is the algorithm-confusion hole: whoever has the public key
  // could mint tokens.
  if (material.find("-----BEGIN ") != std::string_view::npos)
    throw std::invalid_argument("an HMAC secret must not be a PEM key");
  mac_ptr mac{EVP_MAC_fetch(nullptr, "HMAC", nullptr)};
  if (!mac) throw std::runtime_error("OpenSSL offers no HMAC");
  handles_->keyed_mac.reset(EVP_MAC_CTX_new(mac.get()));
  if (!handles_->keyed_mac) throw std::runtime_error("out of memory creating an HMAC");
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(traits.digest), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(handles_->keyed_mac.get(), bytes_of(material), material.size(), params) != 1)
    throw std::runtime_error("OpenSSL refused the HMAC key");
}

crypto_key::~crypto_key() = default;
crypto_key::crypto_key(crypto_key&&) noexcept = default;
crypto_key& crypto_key::operator=(crypto_key&&) noexcept = default;

namespace {

std::optional<std::string> hmac(EVP_MAC_CTX* keyed, std::string_view input) {
  mac_ctx_ptr ctx{EVP_MAC_CTX_dup(keyed)};
  if (!ctx) return std::nullopt;
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t length = 0;
  if (EVP_MAC_update(ctx.get(), bytes_of(input), input.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &length, out.size()) != 1)
    return std::nullopt;
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

}  // namespace

bool crypto_key::verify(std::string_view signing_input, std::string_view signature) const {
  error_queue_scope errors;
  if (is_hmac(alg_)) {
    const auto expected = hmac(handles_->keyed_mac.get(), signing_input);
    // The length of an HMAC is public; only the bytes must be compared in constant time.
    return expected && expected->size() == signature.size() &&
           CRYPTO_memcmp(expected->data(), signature.data(), signature.size()) == 0;
  }
  std::string der;
  if (alg_ == jwt_alg::es256) {
    auto converted = ecdsa_raw_to_der(signature);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  }
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  return ctx &&
         EVP_DigestVerifyInit_ex(ctx.get(), nullptr, traits_of(alg_).digest, nullptr, nullptr,
                                 handles_->asymmetric.get(), nullptr) == 1 &&
         EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(signing_input),
                          signing_input.size()) == 1;
}

std::string crypto_key::sign(std::string_view signing_input) const {
  error_queue_scope errors;
  if (is_hmac(alg_)) {
    auto mac = hmac(handles_->keyed_mac.get(), signing_input);
    if (!mac) throw std::runtime_error("HMAC failed");
    return std::move(*mac);
  }
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  std::size_t length = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, traits_of(alg_).digest, nullptr, nullptr,
                            handles_->asymmetric.get(), nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, bytes_of(signing_input), signing_input.size()) != 1)
    throw std::runtime_error(std::string{alg_name(alg_)} + " signing failed");
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     bytes_of(signing_input), signing_input.size()) != 1)
    throw std::runtime_error(std::string{alg_name(alg_)} + " signing failed");
  signature.resize(length);
  return alg_ == jwt_alg::es256 ? ecdsa_der_to_raw(signature) : signature;
}

}  // namespace sbm::auth::detail
