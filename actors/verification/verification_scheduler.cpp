#include "actors/verification/verification_scheduler.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::verification {

namespace {

constexpr std::uint32_t max_page = 500;
constexpr std::size_t max_source_key_bytes = 200;

struct scheduler_state {
  static inline const char* name = "sbm.verification_scheduler";
  postgres_actor db;
  std::chrono::milliseconds db_timeout{10000};
};

using self_ptr = verification_scheduler_actor::stateful_pointer<scheduler_state>;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }


bool plausible_id(const std::string& id) { return !domain::id_problem(id); }

std::int64_t to_int(const caf::optional<std::string>& text) {
  if (!text) throw std::runtime_error("unexpected NULL");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno == ERANGE)
    throw std::runtime_error("not an integer: " + *text);
  return v;
}

std::string to_text(const caf::optional<std::string>& text) { return text ? *text : std::string{}; }

caf::result<bool> on_event(self_ptr self, const bucket_changed& ev) {
  if (!plausible_id(ev.speaker_id)) return invalid("speaker_id is not a valid id");
  if (ev.event_id <= 0) return invalid("event_id must be positive");
  // The SPEC's rule: a speaker promoted to no_touch goes out unedited, so verify it first.
  const std::string priority{ev.new_bucket == domain::no_touch ? domain::high_priority
                                                               : domain::normal_priority};
  const std::string reason =
    "bucket changed from " + ev.previous_bucket + " to " + ev.new_bucket + ": " + ev.reason;
  db_statement stmt{"INSERT INTO verification.schedule "
                    "(speaker_id, priority, reason, status, source_event_id, client_id) "
                    "VALUES ($1, $2, $3, 'scheduled', $4, $5) "
                    "ON CONFLICT (source_event_id) DO NOTHING",
                    {ev.speaker_id, priority, reason, std::to_string(ev.event_id), ev.client_id},
                    -1};
  auto rp = self->make_response_promise<bool>();
  // A single statement commits on its own; true goes out only after that.
  self->request(self->state.db, self->state.db_timeout, query_atom::value, std::move(stmt))
    .then([rp](db_rows&) mutable { rp.deliver(true); },
          [self, rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

caf::result<bool> on_request(self_ptr self, const verification_request& req) {
  if (!plausible_id(req.speaker_id)) return invalid("speaker_id is not a valid id");
  if (req.priority != "high" && req.priority != "normal")
    return invalid("priority must be high or normal");
  if (req.source_key.empty() || req.source_key.size() > max_source_key_bytes)
    return invalid("source_key must be 1.." + std::to_string(max_source_key_bytes) + " bytes");
  db_statement stmt{"INSERT INTO verification.schedule "
                    "(speaker_id, priority, reason, status, source_key, client_id) "
                    "VALUES ($1, $2, $3, 'scheduled', $4, $5) ON CONFLICT (source_key) DO NOTHING",
                    {req.speaker_id, req.priority, req.reason, req.source_key, req.client_id},
                    -1};
  auto rp = self->make_response_promise<bool>();
  // Unflushed (runtime/db/commit.hpp): a request comes from a report saga, which records its
  // acknowledgement after this commit and re-runs the step (keyed, so once) if a crash loses both.
  self->request(self->state.db, self->state.db_timeout, transact_atom::value, db::unflushed({std::move(stmt)}))
    .then([rp](db_results&) mutable { rp.deliver(true); },
          [self, rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

caf::result<verification_schedule> on_list(self_ptr self, const schedule_query& q) {
  caf::optional<std::string> priority;
  caf::optional<std::string> speaker;
  if (!q.priority.empty()) {
    if (q.priority != "high" && q.priority != "normal")
      return invalid("priority must be high or normal");
    priority = q.priority;
  }
  if (!q.speaker_id.empty()) {
    if (!plausible_id(q.speaker_id)) return invalid("speaker_id is not a valid id");
    speaker = q.speaker_id;
  }
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  db_statement stmt{"SELECT id, speaker_id, priority, reason, status, source_event_id, "
                    "(extract(epoch from created_at) * 1000)::bigint, source_key, client_id "
                    "FROM verification.schedule "
                    "WHERE ($1::text IS NULL OR priority = $1) "
                    "AND ($2::text IS NULL OR speaker_id = $2) AND " +
                        db::scope_clause("client_id", 4) + " ORDER BY id LIMIT $3",
                    {priority, speaker, std::to_string(limit), db::scope_param(q.scope)},
                    -1};
  auto rp = self->make_response_promise<verification_schedule>();
  self->request(self->state.db, self->state.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [rp](db_rows& rows) mutable {
        verification_schedule out;
        try {
          for (const db_row& row : rows.rows) {
            if (row.size() < 9) throw std::runtime_error("short row");
            scheduled_verification v;
            v.id = to_int(row[0]);
            v.speaker_id = to_text(row[1]);
            v.priority = to_text(row[2]);
            v.reason = to_text(row[3]);
            v.status = to_text(row[4]);
            v.source_event_id = row[5] ? to_int(row[5]) : 0;
            v.created_at_ms = to_int(row[6]);
            v.source_key = to_text(row[7]);
            v.client_id = to_text(row[8]);
            out.items.push_back(std::move(v));
          }
        } catch (const std::exception& ex) {
          rp.deliver(make_error(errc::internal, std::string("corrupt schedule row: ") + ex.what()));
          return;
        }
        rp.deliver(std::move(out));
      },
      [self, rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

verification_scheduler_actor::behavior_type scheduler_fn(self_ptr self, postgres_actor db,
                                                         std::chrono::milliseconds db_timeout) {
  self->state.db = std::move(db);
  self->state.db_timeout = db_timeout;
  return {
    [self](publish_atom, const bucket_changed& ev) { return on_event(self, ev); },
    [self](schedule_atom, const verification_request& req) { return on_request(self, req); },
    [self](list_atom, const schedule_query& q) { return on_list(self, q); },
  };
}

}  // namespace

verification_scheduler_actor spawn_verification_scheduler(caf::actor_system& sys,
                                                          postgres_actor db, event_bus_actor bus,
                                                          std::chrono::milliseconds db_timeout) {
  auto scheduler = sys.spawn(scheduler_fn, std::move(db), db_timeout);
  // Sent before returning, so it is in the bus's mailbox ahead of anything published afterwards.
  if (bus) caf::anon_send(bus, subscribe_atom::value, caf::actor_cast<caf::actor>(scheduler), true);
  return scheduler;
}

}  // namespace sbm::verification
