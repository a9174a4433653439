#include "tests/sim/memory_server.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <utility>
#include <vector>

#include "messages/errors.hpp"

namespace sbm::sim {

namespace {

using due_atom = caf::atom_constant<caf::atom("simdue")>;

struct server_state {
  static inline const char* name = "sbm.sim.memory_server";
  std::shared_ptr<faults> f;
  std::shared_ptr<server_stats> stats;
  std::mt19937_64 rng;
  std::uint64_t next = 0;
  std::map<std::uint64_t, std::pair<call, caf::typed_response_promise<bool>>> delayed;
  // Lost answers keep their promise, so nothing at all is ever sent back for them.
  std::vector<caf::typed_response_promise<bool>> lost;
};

using server_ptr = caf::stateful_actor<server_state>*;

bool chance(server_ptr self, double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>{0, 1}(self->state.rng) < p;
}

// Applies a call now, then answers it or loses the answer.
void complete(server_ptr self, call& c, caf::typed_response_promise<bool>& rp, bool lose) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (c.until.passed(now)) {
    ++st.stats->refused;
    return void(rp.deliver(deadline_passed()));
  }
  c.apply(ms_of(now));
  ++st.stats->applied;
  if (lose) {
    ++st.stats->lost;
    st.lost.push_back(std::move(rp));
    return;
  }
  rp.deliver(true);
}

caf::behavior server_fn(server_ptr self, std::shared_ptr<faults> f, std::shared_ptr<server_stats> stats,
                        std::uint64_t seed) {
  self->state.f = std::move(f);
  self->state.stats = std::move(stats);
  self->state.rng.seed(seed);
  return {
    [self](call& c) -> caf::result<bool> {
      auto& st = self->state;
      const auto& f = *st.f;
      const auto n = ++st.stats->calls;
      if (f.down || (f.fail_every && n % f.fail_every == 0) || chance(self, f.fail_chance)) {
        ++st.stats->refused;
        return make_error(errc::unavailable, error_info{"simulated store refused the call", 0, -1, true});
      }
      const bool lose = (f.lose_every && n % f.lose_every == 0) || chance(self, f.lose_chance);
      auto delay = f.latency;
      if (f.jitter.count() > 0)
        delay += std::chrono::milliseconds{std::uniform_int_distribution<std::int64_t>{0, f.jitter.count()}(st.rng)};
      auto rp = self->make_response_promise<bool>();
      if (delay.count() == 0) {
        complete(self, c, rp, lose);
        return rp;
      }
      const auto id = st.next++;
      st.delayed.emplace(id, std::make_pair(std::move(c), rp));
      self->delayed_send(self, delay, due_atom::value, id, lose);
      return rp;
    },
    [self](due_atom, std::uint64_t id, bool lose) {
      auto it = self->state.delayed.find(id);
      if (it == self->state.delayed.end()) return;
      auto entry = std::move(it->second);
      self->state.delayed.erase(it);
      complete(self, entry.first, entry.second, lose);
    },
  };
}

}  // namespace

std::int64_t ms_of(caf::actor_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

server spawn_memory_server(caf::actor_system& sys, std::uint64_t seed) {
  server s{{}, std::make_shared<faults>(), std::make_shared<server_stats>()};
  s.handle = sys.spawn(server_fn, s.faults_now, s.stats, seed);
  return s;
}

}  // namespace sbm::sim
