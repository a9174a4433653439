#include "tests/sim/postgres_worker_sim.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <random>
#include <utility>

#include "messages/errors.hpp"

namespace sbm::sim {

namespace {

using worker_actor = connections::detail::postgres_worker_actor;
using done_atom = caf::atom_constant<caf::atom("simwdone")>;
using sim_worker = worker_actor::extend<caf::reacts_to<done_atom>>;

struct worker_state {
  static inline const char* name = "sbm.sim.postgres_worker";
  std::shared_ptr<faults> f;
  std::shared_ptr<worker_ledger> ledger;
  std::chrono::milliseconds statement_timeout{0};
  std::mt19937_64 rng;
  // Requests waiting their turn: each, when its turn comes, answers at once or after a delay.
  std::deque<std::function<void()>> waiting;
  std::function<void()> finish;  // the answer of the request being served, once its time comes
  bool busy = false;
};

using worker_ptr = sim_worker::stateful_pointer<worker_state>;

caf::error refused() {
  return make_error(errc::unavailable, error_info{"simulated server refused the connection", 0, -1, true});
}

void next(worker_ptr self);

// Serves one request: refused by a fault at once, else answered after the latency.
template <class T>
void serve(worker_ptr self, caf::typed_response_promise<T> rp, T answer, deadline until, bool probe) {
  auto& st = self->state;
  const auto& f = *st.f;
  if (probe) {
    ++st.ledger->probes;
  } else {
    ++st.ledger->started;
  }
  const bool fail = f.down || (!probe && f.fail_every && st.ledger->started % f.fail_every == 0) ||
                    (!probe && f.fail_chance > 0 && std::uniform_real_distribution<double>{0, 1}(st.rng) < f.fail_chance);
  auto ledger = st.ledger;
  auto settle = [ledger, probe] {
    if (!probe) --ledger->outstanding;
  };
  // As a libpq worker: work whose deadline passed is dropped unstarted, the rest gets at most
  // what is left of it.
  const auto left = until.left(self->clock().now(), st.statement_timeout);
  if (left.count() <= 0) {
    settle();
    rp.deliver(deadline_passed());
    return next(self);
  }
  if (fail) {
    if (!probe) ++st.ledger->failed;
    settle();
    rp.deliver(refused());
    return next(self);
  }
  auto delay = f.latency;
  if (f.jitter.count() > 0)
    delay += std::chrono::milliseconds{std::uniform_int_distribution<std::int64_t>{0, f.jitter.count()}(st.rng)};
  st.busy = true;
  if (delay >= left) {
    st.finish = [rp, settle]() mutable {
      settle();
      rp.deliver(make_error(errc::unavailable, "simulated server: cancelled by statement timeout"));
    };
    self->delayed_send(self, left, done_atom::value);
    return;
  }
  st.finish = [rp, settle, answer = std::move(answer)]() mutable {
    settle();
    rp.deliver(std::move(answer));
  };
  self->delayed_send(self, delay, done_atom::value);
}

void next(worker_ptr self) {
  auto& st = self->state;
  st.busy = false;
  if (st.waiting.empty()) return;
  auto run = std::move(st.waiting.front());
  st.waiting.pop_front();
  run();
}

template <class T>
caf::result<T> take(worker_ptr self, T answer, deadline until, bool probe) {
  auto& st = self->state;
  auto rp = self->make_response_promise<T>();
  if (!probe) st.ledger->max_outstanding = std::max(st.ledger->max_outstanding, ++st.ledger->outstanding);
  st.waiting.push_back([self, rp, answer = std::move(answer), until, probe]() mutable {
    serve<T>(self, rp, std::move(answer), until, probe);
  });
  st.ledger->max_waiting = std::max<std::uint64_t>(st.ledger->max_waiting, st.waiting.size() + (st.busy ? 1 : 0));
  if (!st.busy) next(self);
  return rp;
}

sim_worker::behavior_type worker_fn(worker_ptr self, std::shared_ptr<faults> f, std::shared_ptr<worker_ledger> ledger,
                                    std::chrono::milliseconds statement_timeout, std::uint64_t seed) {
  self->state.statement_timeout = statement_timeout;
  self->state.f = std::move(f);
  self->state.ledger = std::move(ledger);
  self->state.rng.seed(seed);
  return {
    [self](query_atom, db_statement& s) { return take<db_rows>(self, db_rows{}, s.until, false); },
    [self](transact_atom, db_transaction& t) {
      db_results out;
      out.results.resize(t.statements.size());
      return take<db_results>(self, std::move(out), t.until, false);
    },
    [self](probe_atom) { return take<bool>(self, true, deadline{}, true); },
    [](migrate_atom) { return std::int32_t{0}; },
    [self](done_atom) {
      auto finish = std::move(self->state.finish);
      self->state.finish = nullptr;
      if (finish) finish();
      next(self);
    },
  };
}

}  // namespace

worker_spawner simulated_postgres_workers(std::shared_ptr<faults> f, std::shared_ptr<worker_ledger> ledger,
                                          std::chrono::milliseconds statement_timeout, std::uint64_t seed) {
  auto n = std::make_shared<std::uint64_t>(0);
  return [f, ledger, statement_timeout, seed, n](caf::local_actor* parent) {
    // Scheduled, not detached: under the test coordinator the seed decides when it runs.
    return caf::actor_cast<worker_actor>(parent->spawn<caf::monitored>(worker_fn, f, ledger, statement_timeout, seed * 1000 + ++*n));
  };
}

}  // namespace sbm::sim
