#include "runtime/db/commit.hpp"

#include <utility>

namespace sbm::db {

db_transaction unflushed(std::vector<db_statement> statements, deadline until) {
  db_transaction tx;
  tx.statements = std::move(statements);
  tx.until = until;
  tx.unflushed = true;
  return tx;
}

}  // namespace sbm::db
