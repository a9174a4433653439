#pragma once
// The OpenSSL half of the JWT core, kept apart so that only jwt_crypto.cpp includes OpenSSL.
// Internal to gateway/auth.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sbm::auth::detail {

enum class jwt_alg { hs256, hs384, hs512, rs256, es256 };

std::optional<jwt_alg> parse_alg(std::string_view name);
std::string_view alg_name(jwt_alg alg);

// Key material parsed once and checked against its algorithm, so that a bad key fails at start
// rather than on the first request.
class crypto_key {
 public:
  enum class purpose { verify, sign };

  // Throws std::invalid_argument with a message that never contains the material.
  crypto_key(jwt_alg alg, std::string_view material, purpose use);
  ~crypto_key();
  crypto_key(crypto_key&&) noexcept;
  crypto_key& operator=(crypto_key&&) noexcept;

  jwt_alg alg() const { return alg_; }

  // Safe to call from several threads at once: the parsed key is only read.
  bool verify(std::string_view signing_input, std::string_view signature) const;
  std::string sign(std::string_view signing_input) const;

 private:
  struct handles;
  jwt_alg alg_;
  std::unique_ptr<handles> handles_;
};

}  // namespace sbm::auth::detail
