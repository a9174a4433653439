#pragma once
// What every port contract suite shares: the two backends a suite runs against (PostgreSQL, the
// real server as every integration test uses it, and the simulation's in-memory server), and a
// way to call a port from an actor of its own (completions run in the caller's context, as in
// the node) and block for the answer.
#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/db/store_link.hpp"
#include "tests/sim/memory_server.hpp"
#include "tests/support/postgres_actor_test.hpp"

namespace sbm::test {

class postgres_backend : public postgres_actor_test {
 protected:
  static constexpr bool in_memory = false;
  void SetUp() override { postgres_actor_test::SetUp(); }
  postgres_actor handle() { return db; }
};

class memory_backend : public io_actor_test {
 protected:
  static constexpr bool in_memory = true;
  void SetUp() override { server = sim::spawn_memory_server(sys); }
  void TearDown() override {
    self->send_exit(server.handle, caf::exit_reason::user_shutdown);
    io_actor_test::TearDown();
  }
  postgres_actor handle() { return {}; }
  sim::server server;
};

// Builds the port with `open(self)` in a fresh actor, runs `op(port, done)` and waits for `done`.
template <class T, class Port, class Op>
caf::expected<T> through_actor_port(caf::actor_system& sys,
                                    std::function<std::unique_ptr<Port>(caf::event_based_actor*)> open, Op op) {
  using namespace std::chrono_literals;
  auto answer = std::make_shared<std::promise<caf::expected<T>>>();
  auto got = answer->get_future();
  sys.spawn([open, op, answer](caf::event_based_actor* self) -> caf::behavior {
    std::shared_ptr<Port> port = open(self);
    op(*port, [self, port, answer](caf::expected<T> r) {
      answer->set_value(std::move(r));
      self->quit();
    });
    return {[](int) {}};
  });
  if (got.wait_for(60s) != std::future_status::ready) return make_error(errc::internal, "the port never answered");
  return got.get();
}

// The same over the link a store adapter is built with (`open(link)`), to `db` or none.
template <class T, class Port, class Op>
caf::expected<T> through_port(caf::actor_system& sys, postgres_actor db,
                              std::function<std::unique_ptr<Port>(const db::store_link&)> open, Op op) {
  using namespace std::chrono_literals;
  return through_actor_port<T, Port>(
    sys, [db, open](caf::event_based_actor* self) { return open(db::make_store_link(self, db, 10s)); }, op);
}

}  // namespace sbm::test
