#include "runtime/resilience/circuit_breaker.hpp"

#include <algorithm>
#include <limits>

namespace sbm::resilience {

std::string_view to_string(breaker_state state) {
  switch (state) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "unknown";
}

circuit_breaker::circuit_breaker(breaker_policy p) : policy_(p) {
  policy_.failure_threshold = std::max(1, policy_.failure_threshold);
  policy_.open_for = std::max(std::chrono::milliseconds{0}, policy_.open_for);
}

bool circuit_breaker::allow(time_point now) {
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now < retry_at_) return false;
      state_ = breaker_state::half_open;  // the caller that sees this is the one trial
      return true;
    case breaker_state::half_open:
      return false;  // the trial is still outstanding
  }
  return false;
}

void circuit_breaker::on_success(time_point) {
  state_ = breaker_state::closed;
  failures_ = 0;
}

void circuit_breaker::on_failure(time_point now) {
  if (failures_ < std::numeric_limits<int>::max()) ++failures_;
  switch (state_) {
    case breaker_state::closed:
      if (failures_ >= policy_.failure_threshold) open(now);
      break;
    case breaker_state::half_open:
      open(now);
      break;
    case breaker_state::open:
      // A late failure of a call admitted before the breaker opened says nothing new about the
      // dependency, so it must not push the trial further away.
      break;
  }
}

void circuit_breaker::open(time_point now) {
  state_ = breaker_state::open;
  retry_at_ = now + policy_.open_for;
}

breaker_state circuit_breaker::state() const { return state_; }
int circuit_breaker::consecutive_failures() const { return failures_; }
time_point circuit_breaker::retry_at() const { return retry_at_; }
const breaker_policy& circuit_breaker::policy() const { return policy_; }

}  // namespace sbm::resilience
