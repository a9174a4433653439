#include "gateway/user_cache.hpp"

#include <stdexcept>

namespace sbm::gateway {

user_standing_cache::user_standing_cache(std::chrono::milliseconds ttl, std::size_t capacity)
  : ttl_(ttl), capacity_(capacity) {
  if (ttl_.count() < 0)
    throw std::invalid_argument("the user cache ttl must not be negative");
  if (capacity_ == 0)
    throw std::invalid_argument("the user cache needs room for at least one entry");
}

std::optional<user_standing_entry> user_standing_cache::find(std::string_view subject,
                                                             time_point now) const {
  const std::string key{subject};
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = entries_.find(key);
  if (it == entries_.end() || now >= it->second.expires)
    return std::nullopt;
  return it->second.entry;
}

void user_standing_cache::remember(const std::string& subject, user_standing_entry entry,
                                   time_point now) {
  if (ttl_.count() == 0)
    return;
  std::lock_guard<std::mutex> guard{mutex_};
  if (entries_.size() >= capacity_ && entries_.find(subject) == entries_.end()) {
    for (auto it = entries_.begin(); it != entries_.end();)
      it = now >= it->second.expires ? entries_.erase(it) : std::next(it);
    if (entries_.size() >= capacity_)
      entries_.clear();
  }
  entries_[subject] = stored{std::move(entry), now + ttl_};
}

void user_standing_cache::forget(const std::string& subject) {
  std::lock_guard<std::mutex> guard{mutex_};
  entries_.erase(subject);
}

std::size_t user_standing_cache::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

}  // namespace sbm::gateway
