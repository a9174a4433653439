#pragma once
// A circuit breaker in the manner of resilience4j: outcomes go into a sliding window (the last N
// calls, or the last N seconds), and once the window holds minimum_calls outcomes the breaker
// opens when the failure rate or the slow-call rate reaches its threshold. OPEN refuses every call
// until open_for has passed (or a health probe succeeds, see below); HALF_OPEN admits a fixed
// number of trial calls and, once all of them have answered, closes or opens again on their rates.
//
// Each state has a generation. acquire() hands out a permit stamped with it, and a result reported
// with a permit from an earlier generation changes nothing: a slow call admitted while CLOSED that
// fails after the breaker opened (or after trial calls closed it again) cannot reopen it, and a
// late success cannot close it.
//
// Health probe and open-for: the probe runs beside the calls, never through the breaker. A
// successful probe while OPEN moves the breaker to HALF_OPEN at once, so real trial calls confirm
// the recovery (the probe alone never closes it); a failed probe while HALF_OPEN opens it again
// for another open_for. open_for is therefore the longest the breaker stays OPEN without a trial:
// when it passes, the next call becomes a trial even if no probe succeeded. Probes never enter the
// window: they say nothing about the calls clients make.
//
// Pure: no clock of its own (the caller passes the actor clock's time), no I/O, no CAF.
#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/resilience/time.hpp"

namespace sbm::resilience {

enum class breaker_state : std::uint8_t { closed, open, half_open };
std::string_view to_string(breaker_state state);

enum class window_kind : std::uint8_t { count_based, time_based };
std::string_view to_string(window_kind kind);

struct breaker_policy {
  // Outcomes the window must hold before any rate is judged (1..window capacity). With the other
  // defaults (count window of 10, 50 %) five failures in a row always open it: the seed's "open
  // after 5 failures".
  int minimum_calls = 5;
  std::chrono::milliseconds open_for{60000};  // longest stay in OPEN without a trial
  window_kind window = window_kind::count_based;
  int window_size = 10;           // calls (count_based, 1..10000) or seconds (time_based, 1..3600)
  double failure_rate = 50.0;     // percent of the window's calls that failed; opens at or above
  std::chrono::milliseconds slow_call_duration{10000};  // a call taking at least this is slow
  double slow_call_rate = 100.0;  // percent of the window's calls that were slow; opens at or above
  int half_open_calls = 3;        // trial calls admitted in HALF_OPEN (1..1000)
};

// Admission: falsy when refused. Report every admitted call exactly once, with record() or release().
struct breaker_permit {
  bool admitted = false;
  std::uint64_t generation = 0;
  time_point started{};
  explicit operator bool() const { return admitted; }
};

struct breaker_snapshot {
  breaker_state state = breaker_state::closed;
  int calls = 0;          // outcomes in the window (CLOSED) or trial outcomes (HALF_OPEN)
  int failures = 0;
  int slow_calls = 0;
  double failure_rate = 0.0;  // percent of `calls`; 0 when there are none
  double slow_call_rate = 0.0;
  int trial_admitted = 0;     // HALF_OPEN: trial calls let through and not yet answered or released
  std::uint64_t transitions = 0;
  std::array<std::uint64_t, 3> entered{};  // transitions into each state, by breaker_state
  std::uint64_t refused = 0;  // calls refused since the breaker was made
  breaker_state last_from = breaker_state::closed;  // the last transition (when transitions > 0)
  time_point last_transition{};
  time_point retry_at{};      // OPEN: when the next call becomes a trial at the latest
};

class circuit_breaker {
 public:
  explicit circuit_breaker(breaker_policy p = {});

  // May a call go through now? OPEN past retry_at moves to HALF_OPEN first.
  breaker_permit acquire(time_point now);
  // The outcome of an admitted call; its duration is now - permit.started.
  void record(const breaker_permit& permit, time_point now, bool failed);
  // An admitted call whose outcome says nothing about the dependency (it was dropped for its
  // caller's lateness): it frees its trial slot and counts nowhere.
  void release(const breaker_permit& permit);
  // The health probe's result (see the header comment).
  void probe(time_point now, bool ok);

  breaker_state state() const { return state_; }
  time_point retry_at() const { return retry_at_; }  // meaningful when OPEN
  const breaker_policy& policy() const { return policy_; }
  breaker_snapshot snapshot(time_point now) const;

 private:
  struct tally {
    int calls = 0;
    int failures = 0;
    int slow = 0;
  };
  struct bucket {  // one second of a time window
    std::int64_t second = -1;
    tally counts;
  };

  void transition(breaker_state to, time_point now);
  void add_to_window(time_point now, bool failed, bool slow);
  tally window_totals(time_point now) const;
  bool trips(const tally& t) const;
  static std::int64_t second_of(time_point t);

  breaker_policy policy_;
  breaker_state state_ = breaker_state::closed;
  std::uint64_t generation_ = 0;
  time_point retry_at_{};
  // count window: a ring of outcomes (bit 0 failed, bit 1 slow) and its running totals
  std::vector<std::uint8_t> ring_;
  std::size_t ring_next_ = 0;
  tally ring_totals_;
  // time window: one bucket per second
  std::vector<bucket> buckets_;
  // HALF_OPEN
  tally trial_;
  int trial_admitted_ = 0;
  std::uint64_t transitions_ = 0;
  std::array<std::uint64_t, 3> entered_{};
  std::uint64_t refused_ = 0;
  breaker_state last_from_ = breaker_state::closed;
  time_point last_transition_{};
};

}  // namespace sbm::resilience
