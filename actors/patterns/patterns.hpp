#pragma once
// The patterns family from outside: one call spawns the pattern index actor, the node's one
// filtered vector index of error patterns. Everything else reaches it through the returned handle
// (messages/patterns.hpp).
//
// Answers:
//   upsert -> true once the row is committed to patterns.patterns and the index holds it
//             (durable before acknowledged; idempotent, so a saga step may repeat it);
//   delete -> true when the pattern existed, false when there was nothing to delete (both leave
//             it absent, in PostgreSQL first);
//   search -> top_k hits by cosine similarity of the embedded query_text, best first, and the plan;
//             a batch (pattern_batch_search: vectors the caller embedded, one filter) -> the
//             union of every query's top_k, and each query's hits when asked, with one plan;
//   status -> counts, the embedder's name, and whether the index is ready.
// Until the index is ready (built from PostgreSQL, or loaded from a snapshot that matches it),
// upsert, delete and search answer errc::unavailable; bad values answer errc::invalid_argument.
//
// The actor runs detached, on a thread of its own: a search over a million patterns, a rebuild
// page or a snapshot is CPU work of milliseconds to seconds that must not hold one of CAF's two
// scheduler threads, and one actor owning the whole structure needs no locks. Sharding later:
// one such actor per shard over the same core, writes routed by a stable hash of speaker_id,
// speaker-filtered searches to one shard, others to all with the top-k lists merged.
//
// Deletes and text edits leave tombstones in the graph; once they pass a fifth of it (and 1,000)
// the actor compacts, i.e. rebuilds the graph, in place: searches wait meanwhile (seconds at 100k,
// minutes at 1M). Weight and status changes (verification) change no vector and leave none.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/patterns/core/embedder.hpp"
#include "messages/connections.hpp"
#include "messages/patterns.hpp"
#include "runtime/db/store_link.hpp"

namespace caf {
class actor_system;
}

namespace sbm::patterns {

class store;

struct pattern_index_settings {
  postgres_actor db;
  std::function<std::unique_ptr<store>(const db::store_link&)> make_store;  // none: PostgreSQL through `db`
  std::uint32_t dimension = 256;
  std::shared_ptr<const patterns::embedder> embedder;  // null: hashed_ngram_embedder(dimension)
  // Empty: no snapshots, every start rebuilds from PostgreSQL. Otherwise `<path>` and
  // `<path>.hnsw`, loaded at start when they match PostgreSQL, saved after a rebuild, every
  // snapshot_interval when something changed (0: never on a timer) and when the actor stops.
  std::string snapshot_path;
  std::chrono::milliseconds snapshot_interval{std::chrono::minutes{10}};
  bool snapshot_on_stop = true;
  std::chrono::milliseconds db_timeout{std::chrono::seconds{10}};
  // A failed load (PostgreSQL down, a timeout) is retried after this, doubling up to 30 s.
  std::chrono::milliseconds retry_delay{std::chrono::seconds{1}};
  std::uint32_t page_size = 10000;  // rows per SELECT while rebuilding
  // hnswlib graph: changing m or ef_construction invalidates snapshots (the next start rebuilds).
  std::size_t m = 16;
  std::size_t ef_construction = 200;
  std::size_t ef_search = 32;  // up to 100,000 patterns; grows with the index (search_ef)
  std::size_t exact_threshold = 25000;  // candidate sets up to this size are scanned exactly
  unsigned build_threads = 0;           // graph insertion and embedding while rebuilding; 0: cores
  std::uint32_t max_top_k = 1000;
  std::size_t max_batch_queries = 1024;  // queries in one batched search (a draft's segments)
  std::size_t max_text_bytes = 65536;   // original, corrected, context and query text each
  // In a cluster: the index holds only the patterns of the speakers this node owns (the speakers'
  // own rendezvous placement, runtime/domain/placement.hpp). It loads nothing until the first
  // placement (placement_atom) and takes no snapshot (they describe the whole table); when the
  // owners change it drops the patterns of the speakers that left and reads, page by page, those
  // of the speakers that came, while it keeps answering for the rest.
  bool clustered = false;
  // Simulation only: the index scheduled, not detached. A detached actor runs on a thread of its
  // own even under the test coordinator (tests/sim), outside the seed's choice of what runs next.
  bool detached = true;
};

// In a cluster, what every other actor of the node talks to instead of the index (the same
// interface): the router in front of this node's index and the other members' (told by the
// membership actor with the placement, pattern_placement_actor).
//   - a write (upsert) goes to the index of its speaker's owner, by the speakers' placement;
//   - a search filtered by speaker, a batch (a draft's segments) likewise;
//   - any other search is scattered to every member and the top-k lists merged (core/hit_merge);
//     a member BASP lost, or that does not answer within scatter_timeout, is named in `missing`
//     and the answer holds the others' hits (no member at all: the first error);
//   - a delete is sent to every member (the pattern may still be held where its speaker was);
//   - status and metrics are this node's index's.
// An owner BASP lost answers errc::moving (its speakers move once its lease lapses; a resend is
// safe: index writes are idempotent by pattern_id). The router keeps no state of a request but a
// scatter's answers, and at most max_scatters of those (errc::overloaded past it). Before the
// first placement, or with this node the only owner, everything goes to the local index.
struct pattern_router_settings {
  pattern_index_actor local;
  std::chrono::milliseconds scatter_timeout{std::chrono::seconds{2}};
  std::uint32_t max_scatters = 256;
};

// The router's handle also takes the placement: caf::actor_cast it to pattern_placement_actor.
// Throws std::invalid_argument without a local index, timeout or bound.
pattern_index_actor spawn_pattern_router(caf::actor_system& system, pattern_router_settings settings);

// Throws std::invalid_argument when db is null (and no make_store), the embedder's dimension differs from
// `dimension`, or a timeout, page size or graph parameter is not usable.
pattern_index_actor spawn_pattern_index(caf::actor_system& system, pattern_index_settings settings);

}  // namespace sbm::patterns
