#pragma once
// The patterns family's port to its durable state (patterns.patterns), in the family's words: what
// the table holds (for the snapshot check), its patterns page by page (for a rebuild), and the
// writes. The pattern index actor never holds SQL: store_postgres.cpp is the only file with it;
// tests/sim/ has an in-memory store for simulation. Both adapters enforce what guards correctness
// (a weight in [0, 1], a new version on every write, an upsert from an older saga revision
// changing nothing, so repeating a step is safe) and one contract suite runs both.
//
// Calls are asynchronous; each completion runs in the calling actor (runtime/db/store_link.hpp).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/patterns/core/pattern_index.hpp"
#include "messages/patterns.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::patterns {

using db::completion;

// What the table holds now: its instance id (names this database's patterns) and the digest of
// its versions, which a snapshot must match to be taken instead of a rebuild.
struct durable_state {
  std::string instance_id;
  version_digest digest;
};

struct upserted {
  bool applied = false;  // false: the stored row came from a newer saga revision and stays
  std::int64_t version = 0;
  std::int64_t created_at_ms = 0;
};

class store {
 public:
  virtual ~store() = default;
  virtual void durable(completion<durable_state> done) = 0;
  // Up to `limit` patterns with pattern_id > after, ascending.
  virtual void page(std::int64_t after, std::uint32_t limit, completion<std::vector<pattern_entry>> done) = 0;
  // Insert or replace by pattern_id, with a new version; created_at keeps the stored value when
  // the record's is 0 (now for a new row). errc::invalid_argument for a weight outside [0, 1].
  virtual void upsert(const pattern_record& record, const std::string& embedder_name, completion<upserted> done) = 0;
  // The same for many records in one transaction: all are written or none (a refused record
  // refuses the batch). One answer per record, in their order. Pattern ids must be distinct
  // (errc::invalid_argument otherwise, nothing written).
  virtual void upsert_batch(const std::vector<pattern_record>& records, const std::string& embedder_name,
                            completion<std::vector<upserted>> done) = 0;
  // true when the pattern existed.
  virtual void erase(std::int64_t pattern_id, completion<bool> done) = 0;
};

using store_factory = std::function<std::unique_ptr<store>(const db::store_link&)>;

std::unique_ptr<store> make_postgres_store(const db::store_link& link);

}  // namespace sbm::patterns
