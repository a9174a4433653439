#pragma once
// Fernet (https://github.com/fernet/spec) over OpenSSL 3, so QA notes stored by SBM can be read by any
// other Fernet implementation holding the key (Python's cryptography.fernet in particular), and back.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sbm::crypto {

class fernet {
 public:
  using iv_bytes = std::array<unsigned char, 16>;

  // The key is 32 bytes as canonical base64url with padding (44 characters), exactly what
  // Python's Fernet.generate_key() emits. Surrounding whitespace is not trimmed: a key read from a
  // file must be trimmed by the reader, so that a stray character is never silently accepted.
  static std::optional<fernet> from_key(std::string_view base64url_key);
  // Throws std::runtime_error if the OpenSSL random generator fails (no key is better than a weak one).
  static std::string generate_key();

  // Token: base64url(0x80 | timestamp (8 bytes, big-endian) | IV | AES-128-CBC/PKCS7 | HMAC-SHA256),
  // padded as Python emits it. Throws std::runtime_error if OpenSSL fails (random IV, cipher).
  std::string encrypt(std::string_view plaintext, std::int64_t now_unix_seconds) const;
  // Same with a caller-chosen IV; only for test vectors, since reusing an IV leaks plaintext equality.
  std::string encrypt_with_iv(std::string_view plaintext, std::int64_t now_unix_seconds,
                              const iv_bytes& iv) const;

  // nullopt when the token is not canonical base64url, is malformed, has another version byte, its
  // HMAC does not match (checked in constant time before anything is decrypted) or its padding is bad.
  // With ttl_seconds (Python's rule): also nullopt when timestamp + ttl < now, or when the token is
  // more than 60 s in the future; a negative ttl refuses every token. If ttl is given without now,
  // the system clock supplies now, as Python does. Throws only if OpenSSL itself fails.
  std::optional<std::string> decrypt(std::string_view token,
                                     std::optional<std::int64_t> now_unix_seconds = {},
                                     std::optional<std::int64_t> ttl_seconds = {}) const;

  // Python accepts tokens up to this far ahead of its clock when a ttl is given.
  static constexpr std::int64_t max_clock_skew_seconds = 60;

  fernet(const fernet&) = default;
  fernet& operator=(const fernet&) = default;
  ~fernet();  // wipes the key material

 private:
  fernet(const unsigned char* signing_key, const unsigned char* encryption_key);

  std::array<unsigned char, 16> signing_key_{};
  std::array<unsigned char, 16> encryption_key_{};
};

}  // namespace sbm::crypto
