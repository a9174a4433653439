#pragma once
// What the gateway remembers about a user's standing (registered role, disabled or not) for a short
// while, so a disabled or demoted user is refused without a database round trip per request. One
// per node, shared by the lanes (which fill it from the users actor) and the HTTP threads (which
// only read it, for reads of published views): thread-safe; the caller passes the time in.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "messages/context.hpp"

namespace sbm::gateway {

struct user_standing_entry {
  bool known = false;     // registered in users.users; unknown users act on their token alone
  bool disabled = false;
  std::string role;       // the registered role when known
  client_scope scope{};     // the registered client scope (unlimited when unknown)
};

class user_standing_cache {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // ttl 0 disables caching (every lookup misses). Throws std::invalid_argument on a negative ttl
  // or a zero capacity.
  user_standing_cache(std::chrono::milliseconds ttl = std::chrono::seconds{5},
                      std::size_t capacity = 10000);

  // The entry stored less than ttl ago, or nullopt.
  std::optional<user_standing_entry> find(std::string_view subject, time_point now) const;
  // When full, expired entries go first; if none has expired everything is dropped: it is only a
  // cache, and a full table of fresh entries means more distinct users per ttl than it was sized for.
  void remember(const std::string& subject, user_standing_entry entry, time_point now);
  // After a change made through this gateway, so the change applies to the next request at once.
  void forget(const std::string& subject);
  std::size_t size() const;

 private:
  struct stored {
    user_standing_entry entry;
    time_point expires;
  };
  std::chrono::milliseconds ttl_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, stored> entries_;
};

}  // namespace sbm::gateway
