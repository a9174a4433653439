#pragma once

#include <chrono>
#include <cstdint>

namespace sbm::resilience {

struct backoff_policy {
  int max_retries = 3;
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{60000};
  double jitter = 0.2;  // fraction, clamped to [0, 1]
};

// Delay before retry `attempt` (0-based): min(cap, base * 2^attempt), then scaled by a factor drawn
// uniformly from [1 - jitter, 1 + jitter) using the given 64-bit random value (so callers choose the
// randomness and tests are deterministic); never above cap, never negative; no overflow for big attempts.
std::chrono::milliseconds backoff_delay(const backoff_policy& policy, int attempt, std::uint64_t random_bits);

// True while another retry is allowed; `attempts_made` counts the retries already made (the first,
// original call is not a retry), so with max_retries = 3 retries 0, 1 and 2 are allowed.
bool retries_left(const backoff_policy& policy, int attempts_made);

}  // namespace sbm::resilience
