#pragma once
// Commits that need not wait for PostgreSQL's WAL flush. Each fsync costs this machine 1-3 ms and
// the flush is shared by every connection, so work that is repaired after a PostgreSQL crash
// anyway should not queue for it: a saga step, for one, is re-run from its durable outbox row when
// its acknowledgement is lost. Such a commit is visible at once and never torn; a crash may lose
// it, but only together with everything logged after it (the WAL is one ordered log), so a step's
// acknowledgement, written after the step, is never kept while the step is lost. Receipts to
// users ("saved") stay on ordinary, flushed commits.
#include <vector>

#include "messages/connections.hpp"

namespace sbm::db {

// The first statement of an unflushed() transaction: it makes the transaction commit without
// waiting for the flush. A PostgreSQL worker that sees it keeps the setting on its connection
// between such transactions instead (actors/connections), so one statement goes alone, in one
// round trip instead of four (BEGIN, the setting, the statement, COMMIT); its result reads "off"
// either way.
constexpr const char* unflushed_setting_sql = "SELECT set_config('synchronous_commit', 'off', true)";

// `statements` in one transaction (transact_atom) that commits without waiting for the flush;
// its first result belongs to the setting, so statement i answers in results[i + 1].
db_transaction unflushed(std::vector<db_statement> statements, deadline until = {});

// Where statement i of an unflushed() transaction answers in its db_results.
constexpr std::size_t unflushed_result(std::size_t i) { return i + 1; }

}  // namespace sbm::db
