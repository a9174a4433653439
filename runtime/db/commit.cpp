#include "runtime/db/commit.hpp"

#include <utility>

namespace sbm::db {

db_transaction unflushed(std::vector<db_statement> statements, deadline until) {
  db_transaction tx;
  tx.until = until;
  tx.statements.reserve(statements.size() + 1);
  // Transaction-local (true): the connection goes back to the pool with its default.
  tx.statements.push_back({unflushed_setting_sql, {}, -1});
  for (auto& s : statements) tx.statements.push_back(std::move(s));
  return tx;
}

}  // namespace sbm::db
