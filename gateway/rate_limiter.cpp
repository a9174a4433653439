#include "gateway/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sbm::gateway {

namespace {

// Each take() also drops this many fully refilled buckets from the cold end, so the table shrinks
// back to the active clients without a separate sweep.
constexpr std::size_t idle_drops_per_take = 2;

}  // namespace

std::int64_t rate_decision::retry_after_seconds() const {
  auto seconds = (retry_after.count() + 999) / 1000;
  return std::max<std::int64_t>(1, seconds);
}

rate_limiter::rate_limiter(rate_limit_settings settings) : settings_(settings) {
  if (!std::isfinite(settings_.rate) || settings_.rate < 0)
    throw std::invalid_argument("rate limit must be a finite number >= 0 (0 = off)");
  if (settings_.rate > 0 && !(settings_.burst >= 1 && std::isfinite(settings_.burst)))
    throw std::invalid_argument("rate burst must be at least 1 request");
  if (settings_.max_clients == 0)
    throw std::invalid_argument("the rate limiter must keep at least one client");
}

double rate_limiter::refilled(const bucket& b, time_point now) const {
  auto elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed <= 0)
    return b.tokens;
  return std::min(settings_.burst, b.tokens + elapsed * settings_.rate);
}

void rate_limiter::drop_idle_tail(time_point now, std::size_t at_most) {
  while (at_most-- > 0 && !recency_.empty() && idle(recency_.back(), now)) {
    index_.erase(recency_.back().key);
    recency_.pop_back();
  }
}

rate_decision rate_limiter::take(std::string_view client, time_point now) {
  if (!enabled())
    return {};
  auto found = index_.find(client);
  recency_list::iterator it;
  if (found != index_.end()) {
    it = found->second;
    it->tokens = refilled(*it, now);
    it->last = std::max(it->last, now);
    recency_.splice(recency_.begin(), recency_, it);
  } else {
    if (index_.size() >= settings_.max_clients) {
      drop_idle_tail(now, 1);
      if (index_.size() >= settings_.max_clients) {
        index_.erase(recency_.back().key);
        recency_.pop_back();
      }
    }
    recency_.push_front(bucket{std::string{client}, settings_.burst, now});
    it = recency_.begin();
    index_.emplace(it->key, it);
  }
  rate_decision decision;
  if (it->tokens >= 1) {
    it->tokens -= 1;
  } else {
    auto missing_seconds = (1 - it->tokens) / settings_.rate;
    auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(missing_seconds * 1000)));
    decision = {false, std::max(wait, std::chrono::milliseconds{1})};
  }
  // After the take this bucket holds less than a full burst, so it is never the one dropped here.
  drop_idle_tail(now, idle_drops_per_take);
  return decision;
}

}  // namespace sbm::gateway
