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

// `statements` in one transaction (transact_atom) that commits without waiting for the flush
// (db_transaction::unflushed). The PostgreSQL worker keeps that setting on its connection between
// such transactions (actors/connections), so one statement goes alone, in one round trip instead
// of four (BEGIN, the setting, the statement, COMMIT).
db_transaction unflushed(std::vector<db_statement> statements, deadline until = {});

}  // namespace sbm::db
