#pragma once
// What every benchmark that needs PostgreSQL starts from: a database of its own on the servers
// scripts/bench started (SBMTEST_SERVERS_DIR), every migration applied, and a connection
// supervisor that already answers "up". New benchmarks use this instead of their own copy.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "actors/connections/connections.hpp"
#include "messages/announce.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/servers.hpp"

namespace sbm::bench {

struct bench_config : caf::actor_system_config {
  bench_config() {
    sbm::announce_types(*this);
  }
};

struct migrated_database {
  std::string url;
  sbm::postgres_actor db;
};

// Throws when the supervisor is not up within a minute (migrations included).
inline migrated_database spawn_migrated_database(caf::actor_system& sys, caf::scoped_actor& self) {
  migrated_database out;
  out.url = sbm::test::servers::shared().fresh_database();
  sbm::connections::postgres_settings pg;
  pg.url = out.url;
  pg.migrations = sbm::schema::all_migrations();
  out.db = sbm::connections::spawn_postgres(sys, pg);
  for (int i = 0; i < 600; ++i) {
    bool up = false;
    self->request(out.db, std::chrono::seconds(5), sbm::status_atom::value)
      .receive([&](sbm::dependency_status& s) { up = s.up; }, [](caf::error&) {});
    if (up) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("PostgreSQL at " + out.url + " never came up");
}

}  // namespace sbm::bench
