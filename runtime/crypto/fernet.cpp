#include "runtime/crypto/fernet.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace sbm::crypto {
namespace {

constexpr unsigned char version_byte = 0x80;
constexpr std::size_t key_bytes = 32;
constexpr std::size_t half_key_bytes = 16;
constexpr std::size_t timestamp_bytes = 8;
constexpr std::size_t iv_size = 16;
constexpr std::size_t block_bytes = 16;
constexpr std::size_t mac_bytes = 32;
constexpr std::size_t header_bytes = 1 + timestamp_bytes + iv_size;
// PKCS7 always adds at least one byte, so even an empty plaintext has one cipher block.
constexpr std::size_t min_token_bytes = header_bytes + block_bytes + mac_bytes;
// EVP_*Update takes an int length; larger inputs go through in pieces.
constexpr std::size_t max_cipher_chunk = std::size_t{1} << 30;

constexpr char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
    out += base64url_alphabet[(v >> 6) & 63];
    out += base64url_alphabet[v & 63];
  }
  const std::size_t rest = size - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
    out += base64url_alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: padded, url-safe alphabet only, and unused trailing bits zero. Python is laxer, but it
// only ever emits this canonical form, and strictness means any altered character is refused.
std::optional<std::vector<unsigned char>> base64url_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  std::vector<unsigned char> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last_quad = i + 4 == text.size();
    const std::size_t data_chars = last_quad ? 4 - padding : 4;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      int d = 0;
      if (k < data_chars) {
        d = base64url_value(text[i + k]);
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<unsigned char>(v >> 16));
    if (data_chars >= 3) out.push_back(static_cast<unsigned char>(v >> 8));
    if (data_chars == 4) out.push_back(static_cast<unsigned char>(v));
    if (data_chars == 2 && (v & 0xFFFF) != 0) return std::nullopt;
    if (data_chars == 3 && (v & 0xFF) != 0) return std::nullopt;
  }
  return out;
}

struct cipher_ctx_deleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

// Runs EVP_CipherUpdate over the whole input and EVP_CipherFinal; false on any OpenSSL failure,
// which on decryption is how bad PKCS7 padding shows up.
bool run_cipher(EVP_CIPHER_CTX* ctx, const unsigned char* in, std::size_t in_size, unsigned char* out,
                std::size_t& out_size) {
  out_size = 0;
  for (std::size_t done = 0; done < in_size;) {
    const std::size_t chunk = std::min(max_cipher_chunk, in_size - done);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out + out_size, &written, in + done, static_cast<int>(chunk)) != 1) return false;
    out_size += static_cast<std::size_t>(written);
    done += chunk;
  }
  int written = 0;
  if (EVP_CipherFinal_ex(ctx, out + out_size, &written) != 1) return false;
  out_size += static_cast<std::size_t>(written);
  return true;
}

// The algorithms are fetched once per process: OpenSSL 3 looks a name up in its provider tables
// on every implicit use (HMAC(), EVP_sha256(), EVP_aes_128_cbc()), which was most of the cost of a
// short note's token. Fetched objects are immutable and safe to share between threads.
const EVP_CIPHER* aes_128_cbc() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  if (cipher == nullptr) throw std::runtime_error("fernet: AES-128-CBC is not available");
  return cipher;
}

const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) throw std::runtime_error("fernet: SHA-256 is not available");
  return md;
}

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// HMAC-SHA256 (RFC 2104) over the fetched digest: H((K ^ opad) | H((K ^ ipad) | data)), the key
// (16 bytes) zero-padded to SHA-256's 64-byte block.
void sign(const unsigned char* key, const unsigned char* data, std::size_t size, unsigned char* mac_out) {
  constexpr std::size_t block = 64;
  unsigned char inner_pad[block];
  unsigned char outer_pad[block];
  for (std::size_t i = 0; i < block; ++i) {
    const unsigned char k = i < half_key_bytes ? key[i] : 0;
    inner_pad[i] = static_cast<unsigned char>(k ^ 0x36);
    outer_pad[i] = static_cast<unsigned char>(k ^ 0x5c);
  }
  unsigned char inner[mac_bytes];
  unsigned int inner_size = 0, mac_size = 0;
  std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx(EVP_MD_CTX_new());
  const bool ok = ctx && EVP_DigestInit_ex2(ctx.get(), sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), inner_pad, block) == 1 &&
                  EVP_DigestUpdate(ctx.get(), data, size) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), inner, &inner_size) == 1 &&
                  EVP_DigestInit_ex2(ctx.get(), sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), outer_pad, block) == 1 &&
                  EVP_DigestUpdate(ctx.get(), inner, inner_size) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), mac_out, &mac_size) == 1;
  OPENSSL_cleanse(inner_pad, block);
  OPENSSL_cleanse(outer_pad, block);
  if (!ok || inner_size != mac_bytes || mac_size != mac_bytes) throw std::runtime_error("fernet: HMAC-SHA256 failed");
}

// Python's rule: expired when timestamp + ttl < now; refused when timestamp > now + skew. Written
// without sums so no input can overflow.
bool within_ttl(std::uint64_t timestamp, std::int64_t now, std::int64_t ttl) {
  if (ttl < 0) return false;
  if (timestamp > static_cast<std::uint64_t>(INT64_MAX)) return false;
  const auto ts = static_cast<std::int64_t>(timestamp);
  if (now >= ts) {
    const std::uint64_t age = static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(ts);
    return age <= static_cast<std::uint64_t>(ttl);
  }
  const std::uint64_t ahead = static_cast<std::uint64_t>(ts) - static_cast<std::uint64_t>(now);
  return ahead <= static_cast<std::uint64_t>(fernet::max_clock_skew_seconds);
}

}  // namespace

fernet::fernet(const unsigned char* signing_key, const unsigned char* encryption_key) {
  std::copy(signing_key, signing_key + half_key_bytes, signing_key_.begin());
  std::copy(encryption_key, encryption_key + half_key_bytes, encryption_key_.begin());
}

fernet::~fernet() {
  OPENSSL_cleanse(signing_key_.data(), signing_key_.size());
  OPENSSL_cleanse(encryption_key_.data(), encryption_key_.size());
}

std::optional<fernet> fernet::from_key(std::string_view base64url_key) {
  auto raw = base64url_decode(base64url_key);
  if (!raw || raw->size() != key_bytes) return std::nullopt;
  fernet result(raw->data(), raw->data() + half_key_bytes);
  OPENSSL_cleanse(raw->data(), raw->size());
  return result;
}

std::string fernet::generate_key() {
  unsigned char raw[key_bytes];
  if (RAND_bytes(raw, static_cast<int>(key_bytes)) != 1) throw std::runtime_error("fernet: RAND_bytes failed");
  std::string key = base64url_encode(raw, key_bytes);
  OPENSSL_cleanse(raw, key_bytes);
  return key;
}

std::string fernet::encrypt(std::string_view plaintext, std::int64_t now_unix_seconds) const {
  iv_bytes iv;
  if (RAND_bytes(iv.data(), static_cast<int>(iv.size())) != 1) throw std::runtime_error("fernet: RAND_bytes failed");
  return encrypt_with_iv(plaintext, now_unix_seconds, iv);
}

std::string fernet::encrypt_with_iv(std::string_view plaintext, std::int64_t now_unix_seconds,
                                    const iv_bytes& iv) const {
  // The field is unsigned on the wire; Python could not even pack a negative time.
  if (now_unix_seconds < 0) throw std::invalid_argument("fernet: negative timestamp");
  const std::size_t cipher_capacity = (plaintext.size() / block_bytes + 1) * block_bytes;
  std::vector<unsigned char> token(header_bytes + cipher_capacity + mac_bytes);

  token[0] = version_byte;
  const auto ts = static_cast<std::uint64_t>(now_unix_seconds);
  for (std::size_t i = 0; i < timestamp_bytes; ++i) {
    token[1 + i] = static_cast<unsigned char>(ts >> (8 * (timestamp_bytes - 1 - i)));
  }
  std::copy(iv.begin(), iv.end(), token.begin() + 1 + timestamp_bytes);

  cipher_ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), aes_128_cbc(), nullptr, encryption_key_.data(), iv.data()) != 1) {
    throw std::runtime_error("fernet: cipher init failed");
  }
  std::size_t cipher_size = 0;
  if (!run_cipher(ctx.get(), reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                  token.data() + header_bytes, cipher_size) ||
      cipher_size != cipher_capacity) {
    throw std::runtime_error("fernet: encryption failed");
  }

  const std::size_t signed_size = header_bytes + cipher_size;
  sign(signing_key_.data(), token.data(), signed_size, token.data() + signed_size);
  return base64url_encode(token.data(), token.size());
}

std::optional<std::string> fernet::decrypt(std::string_view token, std::optional<std::int64_t> now_unix_seconds,
                                           std::optional<std::int64_t> ttl_seconds) const {
  const auto data = base64url_decode(token);
  if (!data || data->size() < min_token_bytes || (data->size() - header_bytes - mac_bytes) % block_bytes != 0) {
    return std::nullopt;
  }
  if ((*data)[0] != version_byte) return std::nullopt;

  const std::size_t signed_size = data->size() - mac_bytes;
  unsigned char expected_mac[mac_bytes];
  sign(signing_key_.data(), data->data(), signed_size, expected_mac);
  if (CRYPTO_memcmp(expected_mac, data->data() + signed_size, mac_bytes) != 0) return std::nullopt;

  if (ttl_seconds) {
    std::uint64_t timestamp = 0;
    for (std::size_t i = 0; i < timestamp_bytes; ++i) timestamp = (timestamp << 8) | (*data)[1 + i];
    const std::int64_t now =
        now_unix_seconds ? *now_unix_seconds
                         : std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    if (!within_ttl(timestamp, now, *ttl_seconds)) return std::nullopt;
  }

  const unsigned char* iv = data->data() + 1 + timestamp_bytes;
  cipher_ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), aes_128_cbc(), nullptr, encryption_key_.data(), iv) != 1) {
    return std::nullopt;
  }
  const std::size_t cipher_size = signed_size - header_bytes;
  // EVP wants a block of headroom per update call, even though padding only ever shrinks the output.
  std::string plaintext(cipher_size + block_bytes, '\0');
  std::size_t plain_size = 0;
  if (!run_cipher(ctx.get(), data->data() + header_bytes, cipher_size,
                  reinterpret_cast<unsigned char*>(plaintext.data()), plain_size)) {
    return std::nullopt;
  }
  plaintext.resize(plain_size);
  return plaintext;
}

}  // namespace sbm::crypto
