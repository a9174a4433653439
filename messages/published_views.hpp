#pragma once
// The published views board: the one deliberate structure shared between actors and the HTTP
// threads (../shared/ARCHITECTURE.md otherwise has actors share no memory). It holds, per speaker
// id, an immutable snapshot of an active speaker's view (held by shared_ptr<const>, never changed
// once made: a change publishes a new one), written only by that speaker's activation on this node
// and read by the HTTP thread, which answers GET /v1/speakers/{id} from it without a hop to any
// actor. What keeps it as correct as asking the speaker:
// - a single writer per key: only the activation that holds the speaker publishes or withdraws
//   it (a withdrawal names its owner, so an activation that has ended never takes away its
//   successor's entry);
// - a speaker publishes after every change of its state is committed and before it answers the
//   write, so a client that got a write's answer reads it back on this node;
// - an entry lives no longer than the activation that published it: withdrawn when it stops
//   serving (unusable, reloading) and when it ends (passivation, hand-off, crash, the shard's
//   stop), before the shard learns of the end and lets another node own the speaker;
// - bounded: past `capacity` entries a speaker is simply not published, and its reads take the
//   lanes' path as before.
// Thread-safe: one mutex, held for a map lookup or update only (never while rendering).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "messages/speakers.hpp"

namespace sbm {

class published_views {
 public:
  using renderer = std::function<std::string(const speaker_view&)>;

  class snapshot {
   public:
    snapshot(speaker_view v, speaker_stamp s) : view(std::move(v)), stamp(s) {}
    const speaker_view view;
    const speaker_stamp stamp;
    // The view as the reader renders it: rendered by the first reader that asks, once per
    // snapshot, so the speaker pays nothing for a body nobody reads.
    const std::string& body(const renderer& render) const;

   private:
    mutable std::once_flag rendered_;
    mutable std::string body_;
  };
  using snapshot_ptr = std::shared_ptr<const snapshot>;

  explicit published_views(std::size_t capacity) : capacity_(capacity) {}
  published_views(const published_views&) = delete;
  published_views& operator=(const published_views&) = delete;

  // The new state of speaker `view.speaker_id`, published by the activation `owner`. False when
  // the board is full and holds nothing of that speaker: nothing is published, reads take the
  // lanes' path.
  bool publish(const void* owner, speaker_view view, speaker_stamp stamp);
  // Takes the speaker's entry away if `owner` published it.
  void withdraw(const std::string& speaker_id, const void* owner);
  // The speaker's snapshot, or null.
  snapshot_ptr find(const std::string& speaker_id) const;

  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }
  // Reads answered from the board (the reader counts them), for the node's metrics.
  void count_served() { served_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t served() const { return served_.load(std::memory_order_relaxed); }

 private:
  struct entry {
    const void* owner;
    snapshot_ptr current;
  };
  const std::size_t capacity_;
  std::atomic<std::uint64_t> served_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace sbm
