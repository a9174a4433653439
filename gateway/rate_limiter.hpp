#pragma once
// Per-client request rate: one token bucket per client key (a principal, or the peer address before
// authentication). Pure and single-threaded: the gateway actor owns it and passes the time in, so
// tests drive it with made-up time points.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sbm::gateway {

struct rate_limit_settings {
  double rate = 0;                   // tokens per second; 0 turns the limiter off
  double burst = 1;                  // bucket size: requests a quiet client may send at once
  std::size_t max_clients = 10000;   // buckets kept in memory (see rate_limiter::take)
};

struct rate_decision {
  bool allowed = true;
  std::chrono::milliseconds retry_after{0};  // when refused: until one token is back

  // Whole seconds for a Retry-After header: rounded up, at least 1.
  std::int64_t retry_after_seconds() const;
};

class rate_limiter {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Off: every request is allowed.
  rate_limiter() = default;
  // Throws std::invalid_argument when rate < 0 or not finite, burst < 1 with rate > 0, or
  // max_clients == 0.
  explicit rate_limiter(rate_limit_settings settings);

  rate_limiter(rate_limiter&&) = default;
  rate_limiter& operator=(rate_limiter&&) = default;
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  // Takes one token from the client's bucket; a client not seen before starts with a full bucket.
  // Memory stays bounded: buckets that have refilled completely are dropped (forgetting them
  // changes no decision), and when max_clients buckets are all in use the least recently used one
  // is dropped to make room.
  rate_decision take(std::string_view client, time_point now);

  bool enabled() const { return settings_.rate > 0; }
  std::size_t clients() const { return index_.size(); }

 private:
  struct bucket {
    std::string key;
    double tokens;
    time_point last;
  };
  using recency_list = std::list<bucket>;  // most recently used first

  double refilled(const bucket& b, time_point now) const;
  bool idle(const bucket& b, time_point now) const { return refilled(b, now) >= settings_.burst; }
  void drop_idle_tail(time_point now, std::size_t at_most);

  rate_limit_settings settings_;
  recency_list recency_;
  // Views into the list nodes' keys, which do not move while the node lives.
  std::unordered_map<std::string_view, recency_list::iterator> index_;
};

}  // namespace sbm::gateway
