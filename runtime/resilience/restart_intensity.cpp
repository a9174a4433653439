#include "runtime/resilience/restart_intensity.hpp"

#include <algorithm>

namespace sbm::resilience {

restart_intensity::restart_intensity(restart_limit limit) : limit_(limit) {
  limit_.max_restarts = std::max(0, limit_.max_restarts);
  limit_.period = std::max(std::chrono::milliseconds{0}, limit_.period);
}

bool restart_intensity::record(time_point now) {
  restarts_.push_back(now);
  while (!restarts_.empty() && now - restarts_.front() > limit_.period) restarts_.pop_front();
  return restarts_.size() <= static_cast<std::size_t>(limit_.max_restarts);
}

int restart_intensity::recent(time_point now) const {
  return static_cast<int>(std::count_if(restarts_.begin(), restarts_.end(),
                                        [&](time_point t) { return now - t <= limit_.period; }));
}

const restart_limit& restart_intensity::limit() const { return limit_; }

}  // namespace sbm::resilience
