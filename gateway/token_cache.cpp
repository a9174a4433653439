#include "gateway/token_cache.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace sbm::gateway {

token_cache::token_cache(std::size_t capacity) : capacity_(capacity) {}

std::string token_cache::key_of(std::string_view token) {
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the implementation up again on every digest,
  // which cost more than hashing the token itself (a profile of GET /v1/speakers/{id}).
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (sha256 == nullptr ||
      EVP_Digest(token.data(), token.size(), digest, &length, sha256, nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::optional<token_verdict> token_cache::find(std::string_view token, std::int64_t now_unix) {
  if (capacity_ == 0)
    return std::nullopt;
  auto key = key_of(token);
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = entries_.find(key);
  if (i == entries_.end())
    return std::nullopt;
  if (now_unix >= i->second.expires_at) {
    entries_.erase(i);
    return std::nullopt;
  }
  return i->second.verdict;
}

void token_cache::remember(std::string_view token, const token_verdict& verdict,
                           std::int64_t expires_at) {
  if (capacity_ == 0)
    return;
  auto key = key_of(token);
  std::lock_guard<std::mutex> guard{mutex_};
  // Entries erased on expiry leave their key in order_; trimming it to twice the capacity keeps
  // it bounded whatever the pattern of expiries.
  while (entries_.size() >= capacity_ || order_.size() >= 2 * capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  if (entries_.emplace(key, entry{verdict, expires_at}).second)
    order_.push_back(std::move(key));
}

std::size_t token_cache::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

}  // namespace sbm::gateway
