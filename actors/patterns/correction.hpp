#pragma once
// The corrections of POST /v1/drafts/correct and of verification sessions: one front actor, the
// handle every caller holds, over a few detached correction workers (as the speakers shard spreads
// quality measurements over its measurers).
//
// The front does no CPU work of its own, since every draft crosses it: it checks what costs O(1)
// (speaker id, the draft's size, the deadline), keeps the node-wide bound (max_in_flight drafts in
// progress; past it overloaded with a Retry-After) and hands each draft to the least busy worker.
//
// A worker does the CPU work a client sizes (bounded by max_draft_bytes), on a thread of its own:
// it checks the UTF-8, cuts the draft into segments (correction_engine.hpp says what a segment is
// and why), embeds every segment, asks the pattern index for the speaker's top_k patterns per
// segment in ONE batched search (filtered by speaker_id, the caller's client scope and the weight
// floor, so no other speaker's pattern can ever reach the draft), and runs the pure engine on the
// union. The index then only searches: one plan for the speaker and, for a speaker partition under
// its exact threshold (what a speaker filter almost always gives), one pass over that partition
// for all segments, which is what each segment's own search would have done. Work whose deadline
// has passed is dropped by the front, and by the worker before it embeds and before the engine.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "actors/patterns/core/correction_engine.hpp"
#include "actors/patterns/core/embedder.hpp"
#include "messages/patterns.hpp"

namespace caf {
class actor_system;
}

namespace sbm::patterns {

struct correction_settings {
  pattern_index_actor index;
  // Must be the index's embedder (the index refuses a batch from another); null: the built-in
  // hashed_ngram_embedder at the index's default dimension.
  std::shared_ptr<const patterns::embedder> embedder;
  std::uint32_t workers = 2;            // drafts.workers: detached correction workers
  std::size_t max_draft_bytes = 65536;  // drafts.max-bytes
  std::uint32_t top_k = 10;             // drafts.top-k: patterns retrieved per segment
  std::size_t segment_words = 40;       // a sentence longer than this is cut
  std::size_t max_segments = 256;       // retrieval queries per draft; past it segments are merged
  std::uint32_t max_in_flight = 64;     // drafts.max-in-flight, for the whole node (all workers)
  std::chrono::milliseconds index_timeout{std::chrono::seconds{10}};
  std::chrono::milliseconds retry_after{std::chrono::seconds{1}};
  correction_config engine;             // drafts.apply-threshold, drafts.weight-floor
};

// Spawns the front and its workers. Throws std::invalid_argument when index is null or a bound,
// the worker count or a timeout is zero.
correction_actor spawn_correction_actor(caf::actor_system& system, correction_settings settings);

}  // namespace sbm::patterns
