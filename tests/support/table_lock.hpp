#pragma once
// A lock held on a table from a transaction of its own for a while, as a psql session of an
// operator (or a slow migration) would: what makes a write wait in a test without a fake.
#include <caf/fwd.hpp>

#include <string>

#include "messages/connections.hpp"

namespace sbm::test {

// Takes `mode` (e.g. "SHARE") on `table` (schema-qualified) through `db`, holds it for `seconds`
// and returns once the lock is granted; false when it never was.
bool hold_table_lock(caf::actor_system& sys, const postgres_actor& db, const std::string& table,
                     const std::string& mode, double seconds);

}  // namespace sbm::test
