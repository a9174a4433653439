#include "actors/users/core/refusal_coalescer.hpp"

#include <limits>
#include <stdexcept>
#include <utility>

namespace sbm::users {

refusal_coalescer::refusal_coalescer(std::size_t max_distinct) : max_distinct_(max_distinct) {
  if (max_distinct_ == 0)
    throw std::invalid_argument("a refusal window must hold at least one row");
}

bool refusal_coalescer::add(refusal r) {
  const bool was_empty = empty();
  key k{r.actor, r.actor_kind, r.action, r.target, r.status, r.peer};
  auto found = index_.find(k);
  if (found != index_.end()) {
    auto& count = rows_[found->second].count;
    if (count < std::numeric_limits<std::uint32_t>::max())
      ++count;
    return was_empty;
  }
  if (rows_.size() >= max_distinct_) {
    ++dropped_;
    return was_empty;
  }
  index_.emplace(std::move(k), rows_.size());
  rows_.push_back({std::move(r), 1});
  return was_empty;
}

refusal_batch refusal_coalescer::take() {
  refusal_batch out{std::move(rows_), dropped_};
  rows_.clear();
  index_.clear();
  dropped_ = 0;
  return out;
}

}  // namespace sbm::users
