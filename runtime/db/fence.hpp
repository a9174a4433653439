#pragma once
// The fence of speaker ownership by lease epoch, as SQL: the one text of the calls to the database
// functions of actors/cluster/schema (cluster.fence_speaker, cluster.release_speaker,
// cluster.fence_singleton), used by the
// cluster's lease store and by the speakers' store alike. The functions belong to the cluster
// family's schema; families reach them through these statements, never through each other.
#include <cstdint>
#include <string>

#include "messages/connections.hpp"

namespace sbm::db {

// Raises (SQLSTATE SB001/SB002, errc::stale_owner), and so rolls back the transaction it ends,
// unless the lease of `epoch` is live and the speaker is its own, unowned, or a lapsed lease's
// (then taken over). As a transaction's last statement the numbers of the others stay the same.
db_statement fence_statement(const std::string& speaker_id, std::int64_t epoch);

// Raises (SB001/SB002, errc::stale_owner) unless the live lease of `epoch` holds the singleton
// `name` (cluster.fence_singleton): the last statement of once-per-cluster work's writes.
db_statement singleton_fence_statement(const std::string& name, std::int64_t epoch);

// Gives the speaker's ownership row of `epoch` back (a row of another epoch stays).
db_statement release_statement(const std::string& speaker_id, std::int64_t epoch);

}  // namespace sbm::db
