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
#include <memory>
#include <optional>
#include <random>
#include <string>
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
        random_(std::random_device{}()),
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
  // still commit) and a lost worker becomes errc::unavailable.
  template <class Result, class... Ts>
  caf::result<Result> dispatch(deadline until, Ts&&... xs) {
    if (auto refusal = refuse())
      return std::move(*refusal);
    auto slot = least_busy();
    if (!slot)
      return make_error(errc::unavailable, settings_.name + ": no connection worker is running");
    auto now = self_->clock().now();
    if (until.passed(now))
      return make_error(errc::deadline_exceeded,
                        settings_.name + ": dropped unstarted, its deadline had passed");
    if (queued_ >= settings_.max_queued)
      return make_error(errc::overloaded,
                        settings_.name + ": " + std::to_string(queued_) +
                            " requests are queued already (the limit)",
                        std::chrono::seconds{1});
    if (!breaker_.allow(now))
      return make_error(errc::unavailable, circuit_open_detail(settings_.name, retry_in(now)),
                        retry_in(now));
    auto promise = self_->template make_response_promise<Result>();
    auto& w = workers_[*slot];
    ++w.in_flight;
    ++queued_;
    // The worker answers first in every normal case (the server cancels at the statement timeout,
    // which is at most what the deadline leaves): this timer only catches a worker that is stuck.
    const auto timeout = until.left(now, settings_.request_timeout) + worker_grace;
    self_->request(w.handle, timeout, std::forward<Ts>(xs)...)
        .then(
            [this, promise, slot = *slot, generation = w.generation](Result& value) mutable {
              --queued_;
              settle(slot, generation, caf::error{});
              promise.deliver(std::move(value));
            },
            [this, promise, slot = *slot, generation = w.generation](caf::error& err) mutable {
              --queued_;
              promise.deliver(settle(slot, generation, std::move(err)));
            });
    return promise;
  }

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
              finished(slot, generation);
              on_error(as_unavailable(std::move(err)));
            });
  }

  // The periodic health probe. A success closes the breaker, so readiness comes back without
  // sacrificing a user request as the half-open trial.
  void probe() {
    if (failed_)
      return;
    bypass<bool>(
        settings_.request_timeout,
        [this](bool) {
          breaker_.on_success(self_->clock().now());
          mark_up();
          if (after_probe_)
            after_probe_();
          schedule_probe();
        },
        [this](caf::error err) {
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
    return s;
  }

 private:
  struct worker {
    Worker handle;
    int in_flight = 0;
    std::uint64_t generation = 0;  // bumped on death, so late replies do not touch a successor
    int restarts_in_a_row = 0;     // drives the back-off; reset by any answer
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
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (workers_[i].handle && (!best || workers_[i].in_flight < workers_[*best].in_flight))
        best = i;
    return best;
  }

  void finished(std::size_t slot, std::uint64_t generation) {
    auto& w = workers_[slot];
    if (w.generation != generation)
      return;
    if (w.in_flight > 0)
      --w.in_flight;
    w.restarts_in_a_row = 0;
  }

  // Books one outcome of a dispatched request and returns the error the caller should see.
  caf::error settle(std::size_t slot, std::uint64_t generation, caf::error err) {
    finished(slot, generation);
    auto now = self_->clock().now();
    if (!err) {
      breaker_.on_success(now);
      mark_up();
      return err;
    }
    err = as_unavailable(std::move(err));
    // Work dropped for its caller's lateness says nothing about the dependency either way; the
    // probe settles a half-open breaker if such a call was its trial.
    if (code_of(err) == errc::deadline_exceeded)
      return err;
    // Only the dependency's own failures count; a conflict is a healthy server saying no. One
    // failed request does not make the dependency "down" (readiness would flap on a slow query):
    // the probe decides that, or the breaker opening.
    if (code_of(err) == errc::unavailable || code_of(err) == errc::outcome_unknown) {
      auto before = breaker_.state();
      breaker_.on_failure(now);
      if (before != resilience::breaker_state::open &&
          breaker_.state() == resilience::breaker_state::open) {
        log_->warn("{} circuit opened after {} failures; next trial in {} s", settings_.name,
                   breaker_.consecutive_failures(), retry_in(now).count());
        mark_down(detail_or_text(err));
      }
    } else {
      breaker_.on_success(now);
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
  bool seen_ = false;  // any outcome yet (probe or request)?
  bool up_ = false;
  bool failed_ = false;
  std::string detail_;
  std::string hold_state_;
  std::string hold_refusal_;
};

}  // namespace sbm::connections::detail
