#pragma once
// What one active speaker keeps in memory. In a header of its own so the activation bench can give
// a bare CAF actor exactly this state and compare what the speaker actor costs beyond it.
#include <caf/actor_clock.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "actors/speakers/core/bucket_policy.hpp"
#include "actors/speakers/core/client_ids.hpp"
#include "actors/speakers/speaker_actor.hpp"
#include "messages/published_views.hpp"

namespace sbm::speakers {

// Who pinned a speaker and why: held only while pinned, as few speakers are, so an unpinned one
// pays a pointer instead of two strings and a timestamp.
struct pin_note {
  std::string reason;
  std::string by;
  std::int64_t at_ms = 0;
};

enum class phase : std::uint8_t { loading, ready, missing, failed };

struct speaker_state {
  static inline const char* name = "sbm.speaker";

  speaker_env_ptr env;
  std::string speaker_id;
  client_id_ref client_id;  // one copy per node (a few hundred clients, a million speakers)
  std::string display_name;
  std::unique_ptr<pin_note> pin;  // null when there is nothing to show (never pinned, unpinned)
  quality_window window{1};
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t version = 0;
  std::uint64_t samples_total = 0;
  std::uint64_t bucket_changes = 0;
  bucket current = bucket::high_touch;
  bool pinned = false;
  std::uint8_t stale_retries = 0;  // consecutive version conflicts, reset by a commit
  phase stage = phase::loading;
  std::uint32_t loads = 0;  // rows loaded by this activation, part of its speaker_stamp
  caf::error unusable;  // the answer to every request while not ready
  caf::actor_clock::time_point last_active{};

  // The state ends with its activation (CAF destroys it in on_exit, before the shard is told of
  // the end), so whatever way the activation ends, its published view goes first.
  ~speaker_state() {
    if (env && env->views)
      env->views->withdraw(speaker_id, this);
  }
};

}  // namespace sbm::speakers
