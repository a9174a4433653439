#include "gateway/idempotency_key.hpp"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace sbm::gateway {

std::optional<std::string> parse_idempotency_key(std::string_view value, std::string& why) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  if (value.empty() || value.size() > 255) {
    why = "Idempotency-Key must be 1 to 255 characters";
    return std::nullopt;
  }
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7E || c == '"' || c == '\\') {
      why = "Idempotency-Key must be visible ASCII without quotes or backslashes";
      return std::nullopt;
    }
  }
  return std::string{value};
}

std::string request_digest(std::string_view method, std::string_view path, std::string_view query,
                           std::string_view body) {
  struct ctx_free {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  };
  std::unique_ptr<EVP_MD_CTX, ctx_free> md{EVP_MD_CTX_new()};
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
  auto part = [&](std::string_view text) {
    const auto size = std::to_string(text.size()) + ":";
    EVP_DigestUpdate(md.get(), size.data(), size.size());
    EVP_DigestUpdate(md.get(), text.data(), text.size());
  };
  part(method);
  part(path);
  part(query);
  part(body);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(md.get(), out, &length);
  static const char* hex = "0123456789abcdef";
  std::string text;
  text.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    text += hex[out[i] >> 4];
    text += hex[out[i] & 0xf];
  }
  return text;
}

}  // namespace sbm::gateway
