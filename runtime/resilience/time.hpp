#pragma once

#include <chrono>

namespace sbm::resilience {

// Policies take the time from the caller (the actor clock) and never read a clock themselves,
// so supervisors stay deterministic under CAF's test coordinator and tests drive time directly.
using time_point = std::chrono::steady_clock::time_point;

}  // namespace sbm::resilience
