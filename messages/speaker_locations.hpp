#pragma once
// How a caller reads a speaker's view with one hop instead of two. The shard delegates a read of a
// live speaker, so the answer comes from the activation itself and shows where it is; a caller
// that remembers it sends its next read of that speaker straight there, as a raw CAF pair would.
// An activation that has passivated or died since bounces the read (request_receiver_down) or is
// gone already (its handle no longer upgrades), and the read goes through the shard again: a read
// is safe to send twice, and only the shard activates a speaker.
#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>

#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

#include "messages/atoms.hpp"
#include "messages/speakers.hpp"

namespace sbm {

// One caller's memory of where speakers live, for one actor's own use (no locks). Weak handles:
// a remembered activation that stops is freed as usual, and the cache never keeps it alive.
class speaker_locations {
 public:
  explicit speaker_locations(std::size_t capacity) : capacity_(capacity) {}

  // The live activation to try first, or an invalid handle (one that has been freed is forgotten).
  speaker_actor find(const std::string& id) {
    auto it = known_.find(id);
    if (it == known_.end()) return {};
    auto live = caf::actor_cast<speaker_actor>(it->second);
    if (!live) known_.erase(it);
    return live;
  }

  // Called in the handler of an answer from `shard`: remembers the activation that sent it unless
  // the shard answered itself (an error, or a read it routed through its own book). Cleared when
  // full: what a lane reads again soon is learnt again at the price of one shard hop.
  template <class Self>
  void learn(Self* self, const std::string& id, const speaker_shard_actor& shard) {
    const auto& sender = self->current_sender();
    if (!sender || sender.get() == caf::actor_cast<caf::actor_control_block*>(shard)) return;
    if (known_.size() >= capacity_ && known_.count(id) == 0) known_.clear();
    known_.insert_or_assign(id, caf::actor_cast<caf::actor_addr>(sender));
  }

  void forget(const std::string& id) { known_.erase(id); }
  std::size_t size() const { return known_.size(); }

 private:
  std::unordered_map<std::string, caf::actor_addr> known_;
  std::size_t capacity_;
};

// Reads speaker `id` for the event-based actor `self`: straight from the activation `where`
// remembers, else (or when that activation has gone) through `shard`, learning where the answer
// came from. `where` must outlive the request (it lives in `self`'s state). `on_view(speaker_view&)`
// or `on_error(caf::error&)` runs exactly once.
template <class Self, class OnView, class OnError>
void read_speaker(Self* self, speaker_locations& where, const speaker_shard_actor& shard,
                  const std::string& id, caf::duration timeout, OnView on_view, OnError on_error) {
  if (auto known = where.find(id)) {
    // Built before the call: the fallback takes the continuations over, the answer needs a copy.
    auto answered = [on_view](speaker_view& v) mutable { on_view(v); };
    self->request(known, timeout, get_atom::value)
      .then(std::move(answered),
            [self, &where, shard, id, timeout, on_view = std::move(on_view),
             on_error = std::move(on_error)](caf::error& e) mutable {
              if (e != caf::sec::request_receiver_down) return on_error(e);
              where.forget(id);  // so the read below goes through the shard
              read_speaker(self, where, shard, id, timeout, std::move(on_view), std::move(on_error));
            });
    return;
  }
  self->request(shard, timeout, get_atom::value, id)
    .then(
      [self, &where, shard, id, on_view = std::move(on_view)](speaker_view& v) mutable {
        where.learn(self, id, shard);
        on_view(v);
      },
      [on_error = std::move(on_error)](caf::error& e) mutable { on_error(e); });
}

}  // namespace sbm
