#include "gateway/direct_reads.hpp"

#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/send.hpp>

#include <utility>

#include "gateway/json_io.hpp"
#include "messages/atoms.hpp"
#include "messages/speakers.hpp"

namespace sbm::gateway {

namespace {

caf::actor_companion* companion_of(const caf::strong_actor_ptr& sink) {
  return static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(sink));
}

}  // namespace

direct_reads::direct_reads(caf::actor_system& sys, std::shared_ptr<responder> out,
                           std::size_t capacity)
  : out_(std::move(out)), capacity_(capacity) {
  // A companion runs nothing of its own: whoever delivers an answer to it runs on_answer, here the
  // speaker's worker. Hidden, so the actor system does not wait for it at shutdown.
  sink_ = caf::actor_cast<caf::strong_actor_ptr>(sys.spawn<caf::actor_companion, caf::hidden>());
  companion_of(sink_)->on_enqueue([this](caf::mailbox_element_ptr answer) { on_answer(*answer); });
}

direct_reads::~direct_reads() {
  companion_of(sink_)->on_enqueue({});
}

bool direct_reads::send(const caf::actor& speaker, ticket t, caf::execution_unit* host) {
  const auto stamp = t.held->stamp;
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (tickets_.size() >= capacity_)
      return false;
    id = ++last_;
    tickets_.emplace(id, std::move(t));
  }
  // Registered before it is sent: the answer may come at once on another worker, or from inside
  // this call (a dead receiver bounces a request synchronously).
  speaker->enqueue(caf::make_mailbox_element(sink_, caf::make_message_id(id), {}, get_atom::value,
                                             stamp),
                   host);
  return true;
}

std::size_t direct_reads::in_flight() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return tickets_.size();
}

void direct_reads::on_answer(caf::mailbox_element& answer) {
  ticket t;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto i = tickets_.find(answer.mid.request_id().integer_value());
    if (i == tickets_.end())
      return;
    t = std::move(i->second);
    tickets_.erase(i);
  }
  auto& content = answer.content();
  if (content.match_elements<speaker_read>()) {
    const auto& read = content.get_as<speaker_read>(0);
    // The common case: the speaker is where the lane's body shows it, and the reader may see it.
    if (!read.changed && read.stamp == t.held->stamp && t.scope.admits(t.held->view.client_id)) {
      http_response r;
      r.body = t.held->body;
      out_->respond(t.request, std::move(r));
      return;
    }
    caf::anon_send(t.lane, get_atom::value, t.request, std::move(t.speaker_id), std::move(t.scope),
                   read);
    return;
  }
  caf::error err = content.match_elements<caf::error>() ? content.get_as<caf::error>(0)
                                                       : caf::make_error(caf::sec::unexpected_response);
  if (err == caf::sec::request_receiver_down) {
    caf::anon_send(t.lane, retry_atom::value, t.request, std::move(t.speaker_id),
                   std::move(t.scope));
    return;
  }
  out_->respond(t.request, from_error(err, false));
}

}  // namespace sbm::gateway
