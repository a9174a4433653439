#include "tests/support/postgres_actor_test.hpp"

#include <chrono>
#include <utility>

#include "actors/connections/connections.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/servers.hpp"

namespace sbm::test {

using namespace std::chrono_literals;

void postgres_actor_test::SetUp() {
  database_url = servers::shared().fresh_database();
  sbm::connections::postgres_settings s;
  s.url = database_url;
  s.pool_size = pool_size;
  s.probe_interval = 100ms;
  s.request_timeout = 5s;
  s.migrations = sbm::schema::all_migrations();
  db = stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
  ASSERT_TRUE(eventually([&] {
    auto st = ask_within<sbm::dependency_status>(2s, db, sbm::status_atom::value);
    return st && st->state == "up";
  })) << "PostgreSQL at " << database_url << " never came up";
}

std::vector<sbm::db_row> postgres_actor_test::sql(std::string text,
                                                  std::vector<caf::optional<std::string>> params) {
  auto rows = ask<sbm::db_rows>(db, sbm::query_atom::value,
                                sbm::db_statement{std::move(text), std::move(params), -1});
  EXPECT_TRUE(rows) << sys.render(rows.error());
  return rows ? rows->rows : std::vector<sbm::db_row>{};
}

}  // namespace sbm::test
