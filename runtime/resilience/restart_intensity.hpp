#pragma once

#include <chrono>
#include <deque>

#include "runtime/resilience/time.hpp"

namespace sbm::resilience {

struct restart_limit {
  int max_restarts = 5;
  std::chrono::milliseconds period{10000};
};

// Erlang/OTP supervisor restart intensity: at most max_restarts restarts within any `period`.
// As in OTP, a restart exactly `period` ago still counts.
class restart_intensity {
 public:
  explicit restart_intensity(restart_limit limit = {});

  // Records a restart at `now`; returns false when more than max_restarts happened within `period`
  // (the supervisor must then escalate instead of restarting).
  bool record(time_point now);
  int recent(time_point now) const;
  const restart_limit& limit() const;

 private:
  restart_limit limit_;
  std::deque<time_point> restarts_;  // oldest first; pruned to the last `period` on each record
};

}  // namespace sbm::resilience
