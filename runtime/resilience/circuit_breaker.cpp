#include "runtime/resilience/circuit_breaker.hpp"

#include <algorithm>
#include <cmath>

namespace sbm::resilience {

namespace {

constexpr int max_window_calls = 10000;
constexpr int max_window_seconds = 3600;
constexpr int max_half_open_calls = 1000;
constexpr std::uint8_t failed_bit = 1;
constexpr std::uint8_t slow_bit = 2;

double percent(int part, int whole) {
  return whole <= 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double clamp_rate(double rate) {
  if (!(rate > 0.0))  // also NaN: a zero threshold would open on the first outcome
    return 100.0;
  return std::min(rate, 100.0);
}

}  // namespace

std::string_view to_string(breaker_state state) {
  switch (state) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "unknown";
}

std::string_view to_string(window_kind kind) {
  return kind == window_kind::time_based ? "time" : "count";
}

circuit_breaker::circuit_breaker(breaker_policy p) : policy_(p) {
  const int cap = policy_.window == window_kind::time_based ? max_window_seconds : max_window_calls;
  policy_.window_size = std::clamp(policy_.window_size, 1, cap);
  // A count window can never hold more than its size, so a larger minimum would never open it.
  const int most = policy_.window == window_kind::count_based ? policy_.window_size : max_window_calls;
  policy_.minimum_calls = std::clamp(policy_.minimum_calls, 1, most);
  policy_.open_for = std::max(std::chrono::milliseconds{0}, policy_.open_for);
  policy_.slow_call_duration = std::max(std::chrono::milliseconds{1}, policy_.slow_call_duration);
  policy_.failure_rate = clamp_rate(policy_.failure_rate);
  policy_.slow_call_rate = clamp_rate(policy_.slow_call_rate);
  policy_.half_open_calls = std::clamp(policy_.half_open_calls, 1, max_half_open_calls);
  if (policy_.window == window_kind::count_based)
    ring_.assign(static_cast<std::size_t>(policy_.window_size), 0);
  else
    buckets_.assign(static_cast<std::size_t>(policy_.window_size), bucket{});
}

breaker_permit circuit_breaker::acquire(time_point now) {
  if (state_ == breaker_state::open && now >= retry_at_)
    transition(breaker_state::half_open, now);
  switch (state_) {
    case breaker_state::closed:
      return {true, generation_, now};
    case breaker_state::half_open:
      if (trial_admitted_ + trial_.calls < policy_.half_open_calls) {
        ++trial_admitted_;
        return {true, generation_, now};
      }
      break;
    case breaker_state::open:
      break;
  }
  ++refused_;
  return {};
}

void circuit_breaker::record(const breaker_permit& permit, time_point now, bool failed) {
  if (!permit.admitted || permit.generation != generation_)
    return;  // admitted in an earlier state: says nothing about this one
  const bool slow = now - permit.started >= policy_.slow_call_duration;
  switch (state_) {
    case breaker_state::closed:
      add_to_window(now, failed, slow);
      if (trips(window_totals(now)))
        transition(breaker_state::open, now);
      break;
    case breaker_state::half_open:
      if (trial_admitted_ > 0)
        --trial_admitted_;
      ++trial_.calls;
      trial_.failures += failed ? 1 : 0;
      trial_.slow += slow ? 1 : 0;
      if (trial_.calls >= policy_.half_open_calls)
        transition(trips(trial_) ? breaker_state::open : breaker_state::closed, now);
      break;
    case breaker_state::open:
      break;  // cannot happen: OPEN admits nothing in its own generation
  }
}

void circuit_breaker::release(const breaker_permit& permit) {
  if (!permit.admitted || permit.generation != generation_)
    return;
  if (state_ == breaker_state::half_open && trial_admitted_ > 0)
    --trial_admitted_;
}

void circuit_breaker::probe(time_point now, bool ok) {
  if (ok && state_ == breaker_state::open)
    transition(breaker_state::half_open, now);
  else if (!ok && state_ == breaker_state::half_open)
    transition(breaker_state::open, now);
}

void circuit_breaker::transition(breaker_state to, time_point now) {
  last_from_ = state_;
  state_ = to;
  ++generation_;
  ++transitions_;
  ++entered_[static_cast<std::size_t>(to)];
  last_transition_ = now;
  trial_ = {};
  trial_admitted_ = 0;
  if (to == breaker_state::open)
    retry_at_ = now + policy_.open_for;
  if (to == breaker_state::closed) {  // a fresh window: the old outcomes led to the opening
    std::fill(ring_.begin(), ring_.end(), 0);
    ring_next_ = 0;
    ring_totals_ = {};
    std::fill(buckets_.begin(), buckets_.end(), bucket{});
  }
}

std::int64_t circuit_breaker::second_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void circuit_breaker::add_to_window(time_point now, bool failed, bool slow) {
  if (policy_.window == window_kind::count_based) {
    // The ring is full once ring_totals_.calls reaches its size; then the oldest outcome leaves.
    auto& cell = ring_[ring_next_];
    if (ring_totals_.calls == policy_.window_size) {
      ring_totals_.failures -= (cell & failed_bit) ? 1 : 0;
      ring_totals_.slow -= (cell & slow_bit) ? 1 : 0;
    } else {
      ++ring_totals_.calls;
    }
    cell = static_cast<std::uint8_t>((failed ? failed_bit : 0) | (slow ? slow_bit : 0));
    ring_totals_.failures += failed ? 1 : 0;
    ring_totals_.slow += slow ? 1 : 0;
    ring_next_ = (ring_next_ + 1) % ring_.size();
    return;
  }
  const auto second = second_of(now);
  auto& b = buckets_[static_cast<std::size_t>(second % policy_.window_size)];
  if (b.second != second)
    b = bucket{second, {}};
  ++b.counts.calls;
  b.counts.failures += failed ? 1 : 0;
  b.counts.slow += slow ? 1 : 0;
}

circuit_breaker::tally circuit_breaker::window_totals(time_point now) const {
  if (policy_.window == window_kind::count_based)
    return ring_totals_;
  tally out;
  const auto second = second_of(now);
  for (const auto& b : buckets_)
    if (b.second > second - policy_.window_size && b.second <= second) {
      out.calls += b.counts.calls;
      out.failures += b.counts.failures;
      out.slow += b.counts.slow;
    }
  return out;
}

bool circuit_breaker::trips(const tally& t) const {
  if (state_ == breaker_state::closed && t.calls < policy_.minimum_calls)
    return false;
  return percent(t.failures, t.calls) >= policy_.failure_rate ||
         percent(t.slow, t.calls) >= policy_.slow_call_rate;
}

breaker_snapshot circuit_breaker::snapshot(time_point now) const {
  breaker_snapshot s;
  s.state = state_;
  const tally t = state_ == breaker_state::half_open ? trial_ : window_totals(now);
  s.calls = t.calls;
  s.failures = t.failures;
  s.slow_calls = t.slow;
  s.failure_rate = percent(t.failures, t.calls);
  s.slow_call_rate = percent(t.slow, t.calls);
  s.trial_admitted = trial_admitted_;
  s.transitions = transitions_;
  s.entered = entered_;
  s.refused = refused_;
  s.last_from = last_from_;
  s.last_transition = last_transition_;
  s.retry_at = retry_at_;
  return s;
}

}  // namespace sbm::resilience
