#pragma once
// The correction actor: POST /v1/drafts/correct's work. It cuts the draft into segments
// (correction_engine.hpp says what a segment is and why), asks the pattern index for the speaker's
// top_k patterns per segment (filtered by speaker_id and the weight floor, so no other speaker's
// pattern can ever reach the draft), unions them and runs the pure correction engine.
//
// It runs detached, on a thread of its own: the engine is CPU work a client sizes (bounded by
// max_draft_bytes), and it must hold neither the gateway actor nor one of CAF's scheduler threads.
// Drafts waiting for the index are bounded by max_in_flight; past it the answer is overloaded with
// a Retry-After.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "actors/patterns/core/correction_engine.hpp"
#include "messages/patterns.hpp"

namespace caf {
class actor_system;
}

namespace sbm::patterns {

struct correction_settings {
  pattern_index_actor index;
  std::size_t max_draft_bytes = 65536;  // drafts.max-bytes
  std::uint32_t top_k = 10;             // drafts.top-k: patterns retrieved per segment
  std::size_t segment_words = 40;       // a sentence longer than this is cut
  std::size_t max_segments = 256;       // retrieval queries per draft; past it segments are merged
  std::uint32_t max_in_flight = 64;     // drafts.max-in-flight
  std::chrono::milliseconds index_timeout{std::chrono::seconds{10}};
  std::chrono::milliseconds retry_after{std::chrono::seconds{1}};
  correction_config engine;             // drafts.apply-threshold, drafts.weight-floor
};

// Throws std::invalid_argument when index is null or a bound is zero.
correction_actor spawn_correction_actor(caf::actor_system& system, correction_settings settings);

}  // namespace sbm::patterns
