#include "actors/verification/verification_scheduler.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/verification/store.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::verification {

namespace {

constexpr std::uint32_t max_page = 500;
constexpr std::size_t max_source_key_bytes = 200;

struct scheduler_state {
  static inline const char* name = "sbm.verification_scheduler";
  std::unique_ptr<store> db;
};

using self_ptr = verification_scheduler_actor::stateful_pointer<scheduler_state>;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

bool plausible_id(const std::string& id) { return !domain::id_problem(id); }

// A write commits on its own; true goes out only after that.
caf::result<bool> add(self_ptr self, const schedule_entry& e) {
  auto rp = self->make_response_promise<bool>();
  self->state.db->schedule(e, [rp](caf::expected<bool> ok) mutable {
    if (!ok) return void(rp.deliver(db::failure(ok.error())));
    rp.deliver(true);
  });
  return rp;
}

caf::result<bool> on_event(self_ptr self, const bucket_changed& ev) {
  if (!plausible_id(ev.speaker_id)) return invalid("speaker_id is not a valid id");
  if (ev.event_id <= 0) return invalid("event_id must be positive");
  // The SPEC's rule: a speaker promoted to no_touch goes out unedited, so verify it first.
  const std::string priority{ev.new_bucket == domain::no_touch ? domain::high_priority
                                                               : domain::normal_priority};
  const std::string reason =
    "bucket changed from " + ev.previous_bucket + " to " + ev.new_bucket + ": " + ev.reason;
  return add(self, {ev.speaker_id, priority, reason, ev.client_id, ev.event_id, {}});
}

std::optional<std::string> request_problem(const verification_request& req) {
  if (!plausible_id(req.speaker_id)) return "speaker_id is not a valid id";
  if (req.priority != "high" && req.priority != "normal") return "priority must be high or normal";
  if (req.source_key.empty() || req.source_key.size() > max_source_key_bytes)
    return "source_key must be 1.." + std::to_string(max_source_key_bytes) + " bytes";
  return std::nullopt;
}

schedule_entry keyed_entry(const verification_request& req) {
  return {req.speaker_id, req.priority, req.reason, req.client_id, 0, req.source_key};
}

caf::result<bool> on_request(self_ptr self, const verification_request& req) {
  if (auto problem = request_problem(req)) return invalid(std::move(*problem));
  return add(self, keyed_entry(req));
}

// One bad request refuses the batch before anything is written: the caller's requests are its
// own steps, and a step the scheduler refuses is retried by its saga alone.
caf::result<bool> on_requests(self_ptr self, const verification_request_batch& batch) {
  if (batch.requests.size() > max_verification_batch)
    return invalid("at most " + std::to_string(max_verification_batch) + " requests at once");
  std::vector<schedule_entry> entries;
  entries.reserve(batch.requests.size());
  for (const auto& req : batch.requests) {
    if (auto problem = request_problem(req)) return invalid(req.source_key + ": " + *problem);
    entries.push_back(keyed_entry(req));
  }
  auto rp = self->make_response_promise<bool>();
  self->state.db->schedule_keyed(entries, [rp](caf::expected<bool> ok) mutable {
    if (!ok) return void(rp.deliver(db::failure(ok.error())));
    rp.deliver(true);
  });
  return rp;
}

caf::result<verification_schedule> on_list(self_ptr self, const schedule_query& q) {
  if (!q.priority.empty() && q.priority != "high" && q.priority != "normal")
    return invalid("priority must be high or normal");
  if (!q.speaker_id.empty() && !plausible_id(q.speaker_id)) return invalid("speaker_id is not a valid id");
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  auto rp = self->make_response_promise<verification_schedule>();
  self->state.db->list_schedule(q, limit, [rp](caf::expected<verification_schedule> out) mutable {
    if (!out) return void(rp.deliver(db::failure(out.error())));
    rp.deliver(std::move(*out));
  });
  return rp;
}

verification_scheduler_actor::behavior_type scheduler_fn(self_ptr self, postgres_actor db,
                                                         std::chrono::milliseconds db_timeout, store_factory make) {
  auto link = db::make_store_link(self, std::move(db), db_timeout);
  self->state.db = make ? make(link) : make_postgres_store(link);
  return {
    [self](publish_atom, const bucket_changed& ev) { return on_event(self, ev); },
    [self](schedule_atom, const verification_request& req) { return on_request(self, req); },
    [self](schedule_atom, const verification_request_batch& b) { return on_requests(self, b); },
    [self](list_atom, const schedule_query& q) { return on_list(self, q); },
  };
}

}  // namespace

verification_scheduler_actor spawn_verification_scheduler(caf::actor_system& sys,
                                                          postgres_actor db, event_bus_actor bus,
                                                          std::chrono::milliseconds db_timeout,
                                                          store_factory make_store) {
  auto scheduler = sys.spawn(scheduler_fn, std::move(db), db_timeout, std::move(make_store));
  // Sent before returning, so it is in the bus's mailbox ahead of anything published afterwards.
  if (bus) caf::anon_send(bus, subscribe_atom::value, caf::actor_cast<caf::actor>(scheduler), true);
  return scheduler;
}

}  // namespace sbm::verification
