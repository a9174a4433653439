#include "runtime/resilience/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace sbm::resilience {

std::chrono::milliseconds backoff_delay(const backoff_policy& policy, int attempt, std::uint64_t random_bits) {
  const std::int64_t base = std::max<std::int64_t>(0, policy.base.count());
  const std::int64_t cap = std::max<std::int64_t>(0, policy.cap.count());
  const int shift = std::max(0, attempt);

  // base << shift <= cap exactly when base <= cap >> shift, which cannot overflow.
  std::int64_t grown = cap;
  if (shift < 63 && base <= (cap >> shift)) grown = base << shift;

  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  // The top 53 bits make a double uniform in [0, 1) without bias.
  const double unit = static_cast<double>(random_bits >> 11) * 0x1.0p-53;
  const double scaled = static_cast<double>(grown) * (1.0 - jitter + 2.0 * jitter * unit);
  if (!(scaled < static_cast<double>(cap))) return std::chrono::milliseconds{cap};
  return std::chrono::milliseconds{std::max<std::int64_t>(0, std::llround(scaled))};
}

bool retries_left(const backoff_policy& policy, int attempts_made) {
  return attempts_made < policy.max_retries;
}

}  // namespace sbm::resilience
