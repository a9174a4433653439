#include "gateway/token_cache.hpp"

namespace sbm::gateway {

token_cache::token_cache(std::size_t capacity) : capacity_(capacity) {}

std::optional<token_verdict> token_cache::find(std::string_view token, std::int64_t now_unix) {
  if (capacity_ == 0)
    return std::nullopt;
  const auto k = key_of(token);
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = entries_.find(k);
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
  const auto k = key_of(token);
  std::lock_guard<std::mutex> guard{mutex_};
  // Entries erased on expiry leave their key in order_; trimming it to twice the capacity keeps
  // it bounded whatever the pattern of expiries.
  while (entries_.size() >= capacity_ || order_.size() >= 2 * capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  if (entries_.emplace(k, entry{verdict, expires_at}).second)
    order_.push_back(k);
}

std::size_t token_cache::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

}  // namespace sbm::gateway
