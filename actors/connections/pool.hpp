#pragma once
// The mechanics both connection supervisors share: a pool of monitored detached workers (least
// in-flight first), the circuit breaker, the health probe that bypasses it, restarts with back-off
// under a restart-intensity limit, and the dependency status. A supervisor keeps one pool in its
// state and routes its typed requests through dispatch().
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/connections.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/resilience/backoff.hpp"
#include "runtime/resilience/circuit_breaker.hpp"
#include "runtime/resilience/restart_intensity.hpp"

namespace sbm::connections::detail {

struct pool_settings {
  std::string name;
  bool required = true;
  std::uint32_t pool_size = 1;
  resilience::breaker_policy breaker;
  resilience::backoff_policy restart_backoff;
  // Requests that failed before reaching the dependency (retry_safe errors: the connection was
  // refused) are repeated after these delays, never past the caller's deadline (or, without one,
  // request_timeout after the first attempt). max_retries = 0: never.
  resilience::backoff_policy retry{0, std::chrono::seconds{1}, std::chrono::seconds{60}, 0.5};
  // Seeds the jitter of restarts and retries; 0 draws one from std::random_device, so nodes
  // differ. A fixed seed replays the same delays (tests, simulation).
  std::uint64_t random_seed = 0;
  resilience::restart_limit restart_limit;
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds request_timeout{10000};
  // Requests the workers hold at once (running or in their mailboxes); past it callers are told
  // to come back (errc::overloaded) instead of queueing behind a slow database.
  std::uint32_t max_queued = 256;
};

// What a supervisor handles besides its public interface: its own timers, and {list_atom}, which
// answers the current worker handles (for tests and diagnostics; never for routing around it).
using pool_internals = caf::typed_actor<caf::reacts_to<probe_atom>,
                                        caf::reacts_to<restart_atom, std::uint32_t>,
                                        caf::reacts_to<retry_atom, std::uint64_t>,
                                        caf::replies_to<list_atom>::with<std::vector<caf::actor>>>;

// "<name>: circuit open, retry in <N>s": for people; the Retry-After travels typed beside it.
std::string circuit_open_detail(const std::string& name, std::chrono::seconds retry_in);

// A stuck worker is noticed this long after its caller's deadline (the worker's own statement
// timeout and tcp_user_timeout normally answer well before).
inline constexpr std::chrono::milliseconds worker_grace{2000};

// Worker: a typed handle that answers {probe_atom} with bool.
// Supervisor: the supervisor's typed handle (its interface includes pool_internals).
template <class Worker, class Supervisor>
class pool {
 public:
  using self_pointer = typename Supervisor::pointer;
  // Spawns one worker monitored by the parent (detached: workers block). Not linked: a worker
  // killed with exit_reason::kill would take a linked supervisor along, whatever its handlers.
  using spawner = std::function<Worker(caf::local_actor* parent)>;

  pool(self_pointer self, pool_settings settings, spawner spawn)
      : self_(self),
        settings_(std::move(settings)),
        spawn_(std::move(spawn)),
        breaker_(settings_.breaker),
        intensity_(settings_.restart_limit),
        random_(settings_.random_seed != 0 ? settings_.random_seed : std::random_device{}()),
        log_(log::get(settings_.name)) {}

  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // The state dies with the supervisor, however it ends; its workers go with it.
  ~pool() {
    for (auto& w : workers_)
      if (w.handle)
        caf::anon_send_exit(w.handle, caf::exit_reason::user_shutdown);
  }

  void start() {
    workers_.resize(std::max<std::uint32_t>(1, settings_.pool_size));
    for (auto& w : workers_)
      w.handle = spawn_(self_);
    self_->set_down_handler([this](caf::down_msg& msg) { on_down(msg); });
    self_->send(self_, probe_atom::value);
  }

  // While held, requests are refused with `refusal` and status reads `state` (once connected).
  void hold(std::string state, std::string refusal) {
    hold_state_ = std::move(state);
    hold_refusal_ = std::move(refusal);
  }
  void unhold() {
    hold_state_.clear();
    hold_refusal_.clear();
  }

  // Permanently down (e.g. the schema is too new): refuse everything, stop probing.
  void fail(std::string reason) {
    failed_ = true;
    mark_down(std::move(reason));
  }

  void mark_down(std::string detail) {
    if (up_ || !seen_)
      log_->warn("{} is down: {}", settings_.name, detail);
    seen_ = true;
    up_ = false;
    detail_ = std::move(detail);
  }

  // Runs after every successful probe (e.g. to start migrations).
  void on_probe_success(std::function<void()> hook) { after_probe_ = std::move(hook); }

  const std::string& name() const { return settings_.name; }

  // Forwards a request to the least busy worker, through the breaker. The caller's answer is the
  // worker's, except that a worker that does not answer in time makes the outcome unknown (it may
  // still commit) and a lost worker becomes errc::unavailable. A retry_safe failure is repeated
  // (settings.retry) while the deadline allows; each attempt passes the breaker again.
  template <class Result, class... Ts>
  caf::result<Result> dispatch(deadline until, Ts&&... xs) {
    auto now = self_->clock().now();
    if (!until.set())  // the retries' budget; the first attempt's timeout is unchanged
      until = deadline::after(now, settings_.request_timeout);
    if (auto refusal = admit(now, until))
      return std::move(*refusal);
    auto permit = breaker_.acquire(now);
    if (!permit)
      return circuit_refusal(now);
    auto promise = self_->template make_response_promise<Result>();
    auto args = std::make_shared<std::tuple<std::decay_t<Ts>...>>(std::forward<Ts>(xs)...);
    attempt<Result>(promise, until, 0, permit, std::move(args));
    return promise;
  }

  // Runs a retry that schedule_retry set up (the supervisor forwards {retry_atom, ticket}).
  void run_retry(std::uint64_t ticket) {
    auto it = pending_retries_.find(ticket);
    if (it == pending_retries_.end())
      return;
    auto run = std::move(it->second);
    pending_retries_.erase(it);
    --queued_;
    run();
  }

  std::uint64_t retries() const { return retries_; }
  std::uint32_t queued() const { return queued_; }

  // Sends straight to the least busy worker, past the breaker and any hold (probes, migrations).
  template <class Result, class OnValue, class OnError, class... Ts>
  void bypass(std::chrono::milliseconds timeout, OnValue on_value, OnError on_error, Ts&&... xs) {
    auto slot = least_busy();
    if (!slot) {
      on_error(make_error(errc::unavailable, settings_.name + ": no connection worker is running"));
      return;
    }
    auto& w = workers_[*slot];
    ++w.in_flight;
    self_->request(w.handle, timeout, std::forward<Ts>(xs)...)
        .then(
            [this, on_value, slot = *slot, generation = w.generation](Result& value) mutable {
              finished(slot, generation);
              on_value(value);
            },
            [this, on_error, slot = *slot, generation = w.generation](caf::error& err) mutable {
              finished(slot, generation, err);
              on_error(as_unavailable(std::move(err)));
            });
  }

  // The periodic health probe. A success moves an open breaker to half-open (readiness comes back
  // at once, and the next real calls are the trials that close it); a failure reopens a half-open
  // one. See runtime/resilience/circuit_breaker.hpp.
  void probe() {
    if (failed_)
      return;
    bypass<bool>(
        settings_.request_timeout,
        [this](bool) {
          note_transition([&](auto now) { breaker_.probe(now, true); });
          mark_up();
          if (after_probe_)
            after_probe_();
          schedule_probe();
        },
        [this](caf::error err) {
          note_transition([&](auto now) { breaker_.probe(now, false); });
          mark_down(detail_or_text(err));
          schedule_probe();
        },
        probe_atom::value);
  }

  void restart(std::uint32_t slot) {
    if (slot >= workers_.size() || workers_[slot].handle)
      return;
    workers_[slot].handle = spawn_(self_);
    log_->info("{} connection worker {} restarted", settings_.name, slot);
  }

  std::vector<caf::actor> workers() const {
    std::vector<caf::actor> out;
    for (const auto& w : workers_)
      if (w.handle)
        out.push_back(caf::actor_cast<caf::actor>(w.handle));
    return out;
  }

  // The pool's part of a metrics scrape: its breaker, its connections and its queue. `setting`
  // names the option that bounds the queue (empty when the bound is not configurable).
  component_metrics metrics(const std::string& setting) const {
    const auto& n = settings_.name;
    const auto snap = breaker_.snapshot(self_->clock().now());
    component_metrics m;
    m.component = n;
    for (auto s : {resilience::breaker_state::closed, resilience::breaker_state::open,
                   resilience::breaker_state::half_open}) {
      const std::string state{resilience::to_string(s)};
      m.samples.push_back({"sbm_breaker_state", {{"breaker", n}, {"state", state}},
                           snap.state == s ? 1.0 : 0.0});
      m.samples.push_back({"sbm_breaker_transitions_total", {{"breaker", n}, {"to", state}},
                           static_cast<double>(snap.entered[static_cast<std::size_t>(s)])});
    }
    m.samples.push_back({"sbm_breaker_refused_calls_total", {{"breaker", n}},
                         static_cast<double>(snap.refused)});
    m.samples.push_back({"sbm_dependency_retries_total", {{"dependency", n}},
                         static_cast<double>(retries_)});
    m.samples.push_back({"sbm_dependency_up", {{"dependency", n}}, status().up ? 1.0 : 0.0});
    std::uint64_t alive = 0, busy = 0, held = 0;
    for (const auto& w : workers_) {
      if (!w.handle)
        continue;
      ++alive;
      if (w.in_flight > 0)
        ++busy;
      held += static_cast<std::uint64_t>(w.in_flight);
    }
    m.samples.push_back({"sbm_pool_connections", {{"pool", n}}, static_cast<double>(alive)});
    m.samples.push_back({"sbm_pool_busy_connections", {{"pool", n}}, static_cast<double>(busy)});
    // What waits behind the busy connections (worker mailboxes) and for a retry.
    const auto waiting = held - busy + pending_retries_.size();
    m.samples.push_back({"sbm_pool_queued_requests", {{"pool", n}}, static_cast<double>(waiting)});
    m.queues.push_back({n + ".queued", setting, queued_, settings_.max_queued});
    return m;
  }

  dependency_status status() const {
    dependency_status s;
    s.name = settings_.name;
    s.required = settings_.required;
    s.detail = detail_;
    auto now = self_->clock().now();
    if (failed_) {
      s.state = "down";
    } else if (breaker_.state() == resilience::breaker_state::open && now < breaker_.retry_at()) {
      s.state = "circuit_open";
      s.detail = circuit_open_detail(settings_.name, retry_in(now)) +
                 (detail_.empty() ? "" : " (" + detail_ + ")");
    } else if (!seen_) {
      s.state = "connecting";
    } else if (!up_) {
      s.state = "down";
    } else if (!hold_state_.empty()) {
      s.state = hold_state_;
      s.detail = hold_refusal_;
    } else {
      s.state = "up";
      s.up = true;
    }
    s.has_breaker = true;
    s.breaker = breaker_view(now);
    return s;
  }

 private:
  struct worker {
    Worker handle;
    int in_flight = 0;
    std::uint64_t generation = 0;  // bumped on death, so late replies do not touch a successor
    int restarts_in_a_row = 0;     // drives the back-off; reset by any answer
    // It bounced a request: it is gone though its down message has not arrived yet, so nothing
    // more is sent to it (a caller asking in a loop would otherwise meet it again and again, each
    // bounce a failure on the breaker's books).
    bool lost = false;
  };

  std::optional<caf::error> refuse() const {
    if (failed_)  // detail_ already names the dependency
      return make_error(errc::unavailable, detail_);
    if (!hold_refusal_.empty())
      return make_error(errc::unavailable, settings_.name + ": " + hold_refusal_);
    return std::nullopt;
  }

  std::optional<std::size_t> least_busy() const {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      const auto& w = workers_[i];
      if (w.handle && !w.lost && (!best || w.in_flight < workers_[*best].in_flight))
        best = i;
    }
    return best;
  }

  void finished(std::size_t slot, std::uint64_t generation, const caf::error& err = caf::error{}) {
    auto& w = workers_[slot];
    if (w.generation != generation)
      return;
    if (w.in_flight > 0)
      --w.in_flight;
    if (err == caf::sec::request_receiver_down) {
      w.lost = true;
      return;
    }
    w.restarts_in_a_row = 0;
  }

  std::optional<caf::error> admit(caf::actor_clock::time_point now, deadline until) const {
    if (auto refusal = refuse())
      return refusal;
    if (!least_busy())
      return make_error(errc::unavailable, settings_.name + ": no connection worker is running");
    if (until.passed(now))
      return make_error(errc::deadline_exceeded,
                        settings_.name + ": dropped unstarted, its deadline had passed");
    if (queued_ >= settings_.max_queued)
      return make_error(errc::overloaded,
                        settings_.name + ": " + std::to_string(queued_) +
                            " requests are queued already (the limit)",
                        std::chrono::seconds{1});
    return std::nullopt;
  }

  caf::error circuit_refusal(caf::actor_clock::time_point now) const {
    return make_error(errc::unavailable, circuit_open_detail(settings_.name, retry_in(now)),
                      retry_in(now));
  }

  // One attempt of a dispatched request; `retries_made` counts the attempts before it.
  template <class Result, class Args>
  void attempt(caf::typed_response_promise<Result> promise, deadline until, int retries_made,
               resilience::breaker_permit permit, std::shared_ptr<Args> args) {
    auto slot = *least_busy();
    auto& w = workers_[slot];
    ++w.in_flight;
    ++queued_;
    auto now = self_->clock().now();
    // The worker answers first in every normal case (the server cancels at the statement timeout,
    // which is at most what the deadline leaves): this timer only catches a worker that is stuck.
    const auto timeout = until.left(now, settings_.request_timeout) + beyond_deadline(*args) + worker_grace;
    auto on_value = [this, promise, slot, permit, generation = w.generation](Result& value) mutable {
      --queued_;
      settle(slot, generation, permit, caf::error{});
      promise.deliver(std::move(value));
    };
    auto on_error = [this, promise, slot, permit, generation = w.generation, until, retries_made,
                     args](caf::error& err) mutable {
      --queued_;
      auto answer = settle(slot, generation, permit, std::move(err));
      if (!schedule_retry<Result>(promise, until, retries_made, answer, args))
        promise.deliver(std::move(answer));
    };
    std::apply(
        [&](const auto&... xs) {
          self_->request(w.handle, timeout, xs...).then(std::move(on_value), std::move(on_error));
        },
        *args);
  }

  // A lone write, once started, runs up to the server's statement_timeout whatever its deadline
  // left (db_statement::autocommit): the stuck-worker timer allows for that.
  template <class Args>
  std::chrono::milliseconds beyond_deadline(const Args&) const {
    return std::chrono::milliseconds{0};
  }
  std::chrono::milliseconds beyond_deadline(const std::tuple<query_atom, db_statement>& args) const {
    return std::get<1>(args).autocommit ? settings_.request_timeout : std::chrono::milliseconds{0};
  }

  // Schedules another attempt after a retry_safe failure when retries are left and the back-off
  // ends before the deadline; false: the caller gets `err` now.
  template <class Result, class Args>
  bool schedule_retry(caf::typed_response_promise<Result>& promise, deadline until,
                      int retries_made, const caf::error& err, const std::shared_ptr<Args>& args) {
    if (!retry_safe(err) || !resilience::retries_left(settings_.retry, retries_made))
      return false;
    const auto now = self_->clock().now();
    const auto delay = resilience::backoff_delay(settings_.retry, retries_made, random_());
    if (delay >= until.left(now, settings_.request_timeout) || queued_ >= settings_.max_queued)
      return false;
    const auto ticket = ++retry_tickets_;
    ++queued_;  // a request waiting for its retry holds its place in the bound
    ++retries_;
    pending_retries_.emplace(ticket, [this, promise, until, retries_made, err, args]() mutable {
      auto at = self_->clock().now();
      if (auto refusal = admit(at, until)) {
        promise.deliver(std::move(*refusal));
        return;
      }
      auto permit = breaker_.acquire(at);
      if (!permit) {
        promise.deliver(circuit_refusal(at));
        return;
      }
      attempt<Result>(std::move(promise), until, retries_made + 1, permit, args);
    });
    log_->debug("{}: retry {} in {} ms after: {}", settings_.name, retries_made + 1, delay.count(),
                detail_or_text(err));
    self_->delayed_send(self_, delay, retry_atom::value, ticket);
    return true;
  }

  // Runs a change of the breaker and logs the transition it made, if any.
  template <class Change>
  void note_transition(Change change) {
    auto now = self_->clock().now();
    auto before = breaker_.state();
    change(now);
    auto after = breaker_.state();
    if (before == after)
      return;
    if (after == resilience::breaker_state::open) {
      auto snap = breaker_.snapshot(now);
      log_->warn("{} circuit {} -> open ({} of {} calls failed, {} slow); next trial in {} s",
                 settings_.name, resilience::to_string(before), snap.failures, snap.calls,
                 snap.slow_calls, retry_in(now).count());
    } else {
      log_->info("{} circuit {} -> {}", settings_.name, resilience::to_string(before),
                 resilience::to_string(after));
    }
  }

  breaker_status breaker_view(caf::actor_clock::time_point now) const {
    const auto& p = breaker_.policy();
    auto snap = breaker_.snapshot(now);
    breaker_status b;
    b.state = std::string(resilience::to_string(snap.state));
    b.window = std::string(resilience::to_string(p.window));
    b.window_size = p.window_size;
    b.minimum_calls = p.minimum_calls;
    b.calls = snap.calls;
    b.failures = snap.failures;
    b.slow_calls = snap.slow_calls;
    b.failure_rate = snap.failure_rate;
    b.slow_call_rate = snap.slow_call_rate;
    b.failure_rate_threshold = p.failure_rate;
    b.slow_call_rate_threshold = p.slow_call_rate;
    b.slow_call_ms = p.slow_call_duration.count();
    b.trial_calls = p.half_open_calls;
    b.trials_in_flight = snap.trial_admitted;
    b.open_for_ms = p.open_for.count();
    if (snap.state == resilience::breaker_state::open && now < snap.retry_at)
      b.retry_in_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(snap.retry_at - now).count();
    b.refused = snap.refused;
    b.retries = retries_;
    b.transitions = snap.transitions;
    if (snap.transitions > 0) {
      b.last_from = std::string(resilience::to_string(snap.last_from));
      b.last_to = b.state;
      b.last_transition_ms_ago =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - snap.last_transition).count();
    }
    return b;
  }

  // Books one outcome of a dispatched request and returns the error the caller should see.
  caf::error settle(std::size_t slot, std::uint64_t generation,
                    const resilience::breaker_permit& permit, caf::error err) {
    finished(slot, generation, err);
    if (!err) {
      note_transition([&](auto now) { breaker_.record(permit, now, false); });
      mark_up();
      return err;
    }
    err = as_unavailable(std::move(err));
    // Work dropped for its caller's lateness says nothing about the dependency either way: its
    // permit is handed back (a half-open trial slot opens for another call).
    if (code_of(err) == errc::deadline_exceeded) {
      breaker_.release(permit);
      return err;
    }
    // Only the dependency's own failures count; a conflict is a healthy server saying no. One
    // failed request does not make the dependency "down" (readiness would flap on a slow query):
    // the probe decides that, or the breaker opening.
    if (code_of(err) == errc::unavailable || code_of(err) == errc::outcome_unknown) {
      note_transition([&](auto now) { breaker_.record(permit, now, true); });
      if (breaker_.state() == resilience::breaker_state::open)
        mark_down(detail_or_text(err));
    } else {
      note_transition([&](auto now) { breaker_.record(permit, now, false); });
      mark_up();
    }
    return err;
  }

  caf::error as_unavailable(caf::error err) const {
    if (err.category() == error_category)
      return err;
    if (err == caf::sec::request_timeout)
      return make_error(errc::outcome_unknown,
                        settings_.name + ": no answer in time; the request may still take effect");
    // The worker died holding it: it may have committed just before.
    return make_error(errc::outcome_unknown,
                      settings_.name + ": connection worker lost (" + caf::to_string(err) + ")");
  }

  static std::string detail_or_text(const caf::error& err) {
    auto detail = detail_of(err);
    return detail.empty() ? caf::to_string(err) : detail;
  }

  void mark_up() {
    if (!up_ && seen_)
      log_->info("{} is up", settings_.name);
    seen_ = true;
    up_ = true;
    detail_.clear();
  }

  std::chrono::seconds retry_in(caf::actor_clock::time_point now) const {
    auto left = breaker_.retry_at() - now;
    auto seconds = std::chrono::ceil<std::chrono::seconds>(left);
    return std::max(seconds, std::chrono::seconds{1});
  }

  void schedule_probe() {
    if (!failed_)
      self_->delayed_send(self_, settings_.probe_interval, probe_atom::value);
  }

  void on_down(caf::down_msg& msg) {
    std::optional<std::size_t> slot;
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (workers_[i].handle && workers_[i].handle.address() == msg.source)
        slot = i;
    if (!slot)
      return;
    auto& w = workers_[*slot];
    w.handle = nullptr;
    w.lost = false;
    w.in_flight = 0;
    ++w.generation;
    if (!intensity_.record(self_->clock().now())) {
      log_->error("{} connection workers keep dying ({}); giving up", settings_.name,
                  caf::to_string(msg.reason));
      self_->quit(make_error(errc::internal, settings_.name +
                                                 ": connection workers keep dying, restart "
                                                 "limit exceeded"));
      return;
    }
    auto delay = resilience::backoff_delay(settings_.restart_backoff, w.restarts_in_a_row++,
                                           random_());
    log_->warn("{} connection worker {} died ({}); restarting in {} ms", settings_.name, *slot,
               caf::to_string(msg.reason), delay.count());
    self_->delayed_send(self_, delay, restart_atom::value, static_cast<std::uint32_t>(*slot));
  }

  self_pointer self_;
  pool_settings settings_;
  spawner spawn_;
  std::vector<worker> workers_;
  resilience::circuit_breaker breaker_;
  resilience::restart_intensity intensity_;
  std::mt19937_64 random_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<void()> after_probe_;
  std::uint32_t queued_ = 0;
  std::map<std::uint64_t, std::function<void()>> pending_retries_;  // bounded by max_queued
  std::uint64_t retry_tickets_ = 0;
  std::uint64_t retries_ = 0;
  bool seen_ = false;  // any outcome yet (probe or request)?
  bool up_ = false;
  bool failed_ = false;
  std::string detail_;
  std::string hold_state_;
  std::string hold_refusal_;
};

}  // namespace sbm::connections::detail
