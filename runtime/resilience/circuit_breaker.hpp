#pragma once

#include <chrono>
#include <string_view>

#include "runtime/resilience/time.hpp"

namespace sbm::resilience {

enum class breaker_state { closed, open, half_open };
std::string_view to_string(breaker_state state);

struct breaker_policy {
  int failure_threshold = 5;  // consecutive failures that open the breaker; values below 1 act as 1
  std::chrono::milliseconds open_for{60000};
};

class circuit_breaker {
 public:
  explicit circuit_breaker(breaker_policy p = {});

  // May a call go through now? closed: yes. open: no until open_for has passed since opening, then
  // the breaker turns half_open and lets exactly one trial call through; half_open with the trial
  // outstanding: no. Every admitted call must be reported with on_success or on_failure.
  bool allow(time_point now);
  void on_success(time_point now);   // closed; failures reset
  void on_failure(time_point now);   // counts consecutive failures; threshold -> open; a failed trial -> open again

  breaker_state state() const;
  int consecutive_failures() const;
  time_point retry_at() const;       // when an open breaker will allow a trial (meaningful when open)
  const breaker_policy& policy() const;

 private:
  void open(time_point now);

  breaker_policy policy_;
  breaker_state state_ = breaker_state::closed;
  int failures_ = 0;
  time_point retry_at_{};
};

}  // namespace sbm::resilience
