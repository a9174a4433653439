#pragma once
// Reads of a speaker answered without waking the lane a second time. A lane that holds a speaker's
// rendered body at a stamp (rendered_views) and knows where the speaker lives sends the read
// straight to it with this sink as the sender. The speaker's answer is then handled on the
// speaker's own thread: at the stamp the lane held, it completes the HTTP request with the body the
// lane held; a changed view, or a read bounced because the activation is gone, goes back to the
// lane (get_atom / retry_atom), which renders it or reads through the shard. A CAF resume costs
// ~2-3k instructions, and this spares one per read of an unchanged speaker.
// The tickets of reads in flight are bounded by `capacity`; past it a lane reads the usual way.
// Thread-safe: lanes open tickets on their workers, answers close them on the speakers'.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "gateway/rendered_views.hpp"
#include "gateway/responder.hpp"
#include "messages/context.hpp"

namespace sbm::gateway {

class direct_reads {
 public:
  struct ticket {
    std::uint64_t request = 0;  // the HTTP server's id
    std::string speaker_id;
    client_scope scope;
    std::shared_ptr<const rendered_views::entry> held;  // the lane's body, at held->stamp
    caf::actor lane;                                     // where what needs a lane goes back
  };

  direct_reads(caf::actor_system& sys, std::shared_ptr<responder> out, std::size_t capacity);
  ~direct_reads();
  direct_reads(const direct_reads&) = delete;
  direct_reads& operator=(const direct_reads&) = delete;

  // Sends (get_atom, t.held->stamp) to `speaker` with this sink as the sender. False, and nothing
  // sent, when `capacity` reads are in flight already.
  bool send(const caf::actor& speaker, ticket t, caf::execution_unit* host);

  std::size_t in_flight() const;
  std::size_t capacity() const { return capacity_; }

 private:
  void on_answer(caf::mailbox_element& answer);

  std::shared_ptr<responder> out_;
  std::size_t capacity_;
  caf::strong_actor_ptr sink_;
  mutable std::mutex mutex_;
  std::uint64_t last_ = 0;
  std::unordered_map<std::uint64_t, ticket> tickets_;
};

}  // namespace sbm::gateway
