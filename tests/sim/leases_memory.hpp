#pragma once
// The cluster's lease store in memory, for simulation: the same port as
// actors/cluster/store_postgres.cpp, applied by the simulation's server actor (memory_server.hpp),
// so its clock is the server's virtual clock as PostgreSQL's now() is the real one. It keeps what
// the schema keeps: epochs from one sequence, a lapsed lease never revived, and the fence of
// cluster.fence_speaker (the writer's lease live, the speaker its own, unowned or a lapsed lease's), and
// cluster.hold_singleton's rule (taken from nobody or from a lease that is not live).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "actors/cluster/store.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::sim {

struct lease_tables {
  struct row {
    std::string address, node_name;
    std::int64_t renewed_ms = 0, expires_ms = 0;
  };
  std::map<std::int64_t, row> leases;             // by epoch
  std::map<std::string, std::int64_t> owners;     // speaker -> epoch
  std::map<std::string, std::int64_t> singletons; // name -> epoch
  std::int64_t next_epoch = 1;
};

// The fence of cluster.fence_speaker over these tables, at the server's instant `now`: the one
// copy the lease store and the speakers store both run (inside the call that writes).
caf::expected<bool> fence_speaker(lease_tables& t, const std::string& speaker_id, std::int64_t epoch,
                                  std::int64_t now);
// cluster.release_speaker: drops the speaker's ownership row when it is `epoch`'s.
void release_speaker(lease_tables& t, const std::string& speaker_id, std::int64_t epoch);

using lease_store_factory = std::function<std::unique_ptr<cluster::store>(const db::store_link&)>;

lease_store_factory memory_lease_store(caf::actor server, std::shared_ptr<lease_tables> tables);

}  // namespace sbm::sim
