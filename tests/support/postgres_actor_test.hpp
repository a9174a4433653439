#pragma once
// The fixture most integration tests start from: a PostgreSQL connection supervisor on a database
// of the test's own (the shared server, every migration applied), already answering "up", and a
// way to read or change rows directly to set up or check what the actors under test did.
#include <cstddef>
#include <string>
#include <vector>

#include "messages/connections.hpp"
#include "tests/support/actor_test.hpp"

namespace sbm::test {

class postgres_actor_test : public io_actor_test {
 protected:
  // Derived fixtures call this first, then spawn what they test on `db`.
  void SetUp() override;

  // Raw SQL against the test's database, through the same supervisor; a failure fails the test.
  std::vector<sbm::db_row> sql(std::string text, std::vector<caf::optional<std::string>> params = {});

  // Set before SetUp() to size the pool (a test that holds a lock needs a connection spare).
  std::size_t pool_size = 2;
  std::string database_url;
  sbm::postgres_actor db;
};

}  // namespace sbm::test
