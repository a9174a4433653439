#pragma once
// Refused requests are chosen by whoever sends them, so their audit trail must not grow as fast as
// an attacker can send: refusals that look alike (same actor, action, target, status, peer) within
// one flush window become one row with a count, and a window holds at most `max_distinct` of them;
// the rest are only counted. Pure: the audit actor owns the window and its timer.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace sbm::users {

struct refusal {
  std::string actor;
  std::string actor_kind;
  std::string action;
  std::string target;
  std::int32_t status = 0;
  std::string peer;
  std::string detail;  // of the first refusal of its kind in the window
};

struct coalesced_refusal {
  refusal first;
  std::uint32_t count = 0;
};

struct refusal_batch {
  std::vector<coalesced_refusal> rows;  // in order of first appearance
  std::uint64_t dropped = 0;            // refusals that found the window full
};

class refusal_coalescer {
 public:
  // Throws std::invalid_argument when max_distinct is 0.
  explicit refusal_coalescer(std::size_t max_distinct);

  // Returns true when the window was empty before: the caller schedules the flush then.
  bool add(refusal r);
  // Empties the window.
  refusal_batch take();
  bool empty() const { return rows_.empty() && dropped_ == 0; }

 private:
  using key = std::tuple<std::string, std::string, std::string, std::string, std::int32_t, std::string>;
  std::size_t max_distinct_;
  std::map<key, std::size_t> index_;  // -> position in rows_
  std::vector<coalesced_refusal> rows_;
  std::uint64_t dropped_ = 0;
};

}  // namespace sbm::users
