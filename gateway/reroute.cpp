#include "gateway/reroute.hpp"

namespace sbm::gateway {

std::optional<std::chrono::milliseconds> reroute_delay(errc code, bool safe, int resends_made,
                                                       std::chrono::milliseconds left,
                                                       std::uint64_t random_bits) {
  if (code != errc::moving || !safe || !resilience::retries_left(reroute_policy, resends_made))
    return std::nullopt;
  const auto wait = resilience::backoff_delay(reroute_policy, resends_made, random_bits);
  if (wait >= left)
    return std::nullopt;
  return wait;
}

}  // namespace sbm::gateway
