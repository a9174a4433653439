#pragma once

#include <chrono>
#include <cstdint>

namespace sbm::resilience {

// Policies take the time from the caller (the actor clock) and never read a clock themselves,
// so supervisors stay deterministic under CAF's test coordinator and tests drive time directly.
using time_point = std::chrono::steady_clock::time_point;

// Wall-clock time for an actor that must write it (a Fernet token's timestamp, a lag against a
// time PostgreSQL stamped): the system clock is read once, when the actor starts, and then moves
// with the actor clock, so under CAF's test coordinator it follows virtual time like every timer.
class wall_clock {
 public:
  explicit wall_clock(time_point now)
      : anchor_(now),
        anchor_unix_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()) {}

  std::int64_t unix_ms(time_point now) const {
    return anchor_unix_ms_ + std::chrono::duration_cast<std::chrono::milliseconds>(now - anchor_).count();
  }
  std::int64_t unix_seconds(time_point now) const { return unix_ms(now) / 1000; }

 private:
  time_point anchor_;
  std::int64_t anchor_unix_ms_;
};

}  // namespace sbm::resilience
