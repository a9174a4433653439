#pragma once
// The speakers store in memory, for simulation: the same port as
// actors/speakers/store_postgres.cpp, each call applied whole by the simulation's server actor
// (memory_server.hpp) at its virtual instant. It keeps what the schema and the SQL keep: a change
// only under the version it was computed from, a job counted once, one write per Idempotency-Key,
// and the fence of a clustered write, run over the lease store's tables (leases_memory.hpp) so
// the simulation sees the same ownership the cluster's lease store decides.
//
// It also records every write it accepted, with the epoch it carried and whether that epoch was
// the speaker's live owner at that instant (judged apart from the fence), so a scenario can check
// at the store that no two nodes wrote one speaker at once.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/speakers/store.hpp"
#include "tests/sim/leases_memory.hpp"

namespace sbm::sim {

struct speaker_tables {
  struct speaker_row {
    speaker_view view;
    std::int64_t version = 0;
  };
  struct key_row {
    std::string digest;
    std::uint8_t outcome = 0;
    speaker_view answer;
    std::int64_t created_ms = 0;
  };
  struct outbox_row {
    std::int64_t id = 0;
    std::string topic, speaker_id, new_bucket;
    speakers::outbox_entry entry;  // what the relay reads (event or record)
    std::int64_t created_ms = 0;
    bool delivered = false, streamed = false, audited = false;  // the targets' stamps
  };
  // A write the store accepted (a change or a registration).
  struct accepted {
    std::string speaker_id;
    speakers::fence_epoch epoch;
    bool live_owner = true;  // the epoch held the speaker's ownership row under a live lease
    std::string job_id;      // of a sample
    std::int64_t at_ms = 0;
  };

  std::map<std::string, speaker_row> speakers;
  std::map<std::string, std::vector<quality_point>> samples;  // by speaker, oldest first
  std::set<std::pair<std::string, std::string>> jobs;         // (speaker, job) counted
  std::map<std::string, std::vector<history_entry>> history;
  std::vector<outbox_row> outbox;
  std::map<std::pair<std::string, std::string>, key_row> keys;  // (principal, key)
  std::int64_t next_id = 1;  // samples, history and outbox rows, like their sequences
  std::vector<accepted> writes;

  // The ownership rows and leases the fence reads; null outside a cluster (no write is fenced).
  std::shared_ptr<lease_tables> leases;
  // The planted bug (test-only): a change is saved without passing the fence, so a node whose
  // lease lapsed or moved writes all the same. The nodes scenario must catch it.
  bool skip_write_fence = false;
  // Each release of an ownership row is refused as busy (errc::overloaded, nothing applied) the
  // first time it is asked, as a full connection pool refuses it: a test of the shard's retry.
  bool busy_first_release = false;
  std::map<std::string, std::uint64_t> releases_asked;  // by speaker
  std::uint64_t releases_refused = 0;
};

speakers::store_ptr memory_speaker_store(caf::actor server, std::shared_ptr<speaker_tables> tables);

}  // namespace sbm::sim
