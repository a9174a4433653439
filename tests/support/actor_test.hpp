#pragma once
// GoogleTest fixtures for actor tests. io_actor_test runs CAF's real scheduler, for tests whose
// actors do real I/O (connection workers block on sockets); sim_actor_test runs CAF's test
// coordinator, for deterministic tests that drive virtual time.
#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <utility>
#include <vector>

#include "messages/announce.hpp"
#include "messages/errors.hpp"

namespace sbm::test {

// Polls `condition` until it holds or `timeout` passes; true when it held. Real servers take real
// time to go down or come back, so tests wait for an observable state instead of sleeping.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds{30},
                std::chrono::milliseconds poll = std::chrono::milliseconds{50});

// Sends a request from a scoped actor and blocks for the answer, the error, or a request_timeout.
template <class Result, class Handle, class... Ts>
caf::expected<Result> request_blocking(caf::scoped_actor& self, std::chrono::milliseconds timeout,
                                       const Handle& to, Ts&&... xs) {
  caf::expected<Result> out{caf::error{}};
  self->request(to, timeout, std::forward<Ts>(xs)...)
      .receive([&](Result& value) { out = std::move(value); },
               [&](caf::error& err) { out = std::move(err); });
  return out;
}

// The SBM error code of a reply: errc::none for a value.
template <class T>
errc code(const caf::expected<T>& x) {
  return x ? errc::none : code_of(x.error());
}

struct io_config : caf::actor_system_config {
  io_config() { sbm::announce_types(*this); }
};

class io_actor_test : public ::testing::Test {
 protected:
  // Sends a request and blocks for the answer (or the error, or a request_timeout).
  template <class Result, class Handle, class... Ts>
  caf::expected<Result> ask_within(std::chrono::milliseconds timeout, const Handle& to,
                                   Ts&&... xs) {
    return request_blocking<Result>(self, timeout, to, std::forward<Ts>(xs)...);
  }

  template <class Result, class Handle, class... Ts>
  caf::expected<Result> ask(const Handle& to, Ts&&... xs) {
    return ask_within<Result>(std::chrono::seconds{30}, to, std::forward<Ts>(xs)...);
  }

  // Stops the actor when the test ends (and waits for it), so ~actor_system does not hang on an
  // actor that keeps a timer.
  template <class Handle>
  Handle stop_at_end(Handle handle) {
    owned_.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  void TearDown() override {
    for (auto& a : owned_)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(owned_);
    owned_.clear();
  }

  io_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

 private:
  std::vector<caf::actor> owned_;
};

struct sim_config : caf::actor_system_config {
  sim_config() {
    sbm::announce_types(*this);
    set("scheduler.policy", caf::atom("testing"));
  }
};

// sched.run() runs every ready actor; sched.advance_time(d) fires timers and request timeouts.
// An actor that re-arms a timer must be sent an exit (then sched.run()) before the test ends.
class sim_actor_test : public ::testing::Test {
 protected:
  sim_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys, true};
};

}  // namespace sbm::test
