// The append-only audit log. Successes that must be on record (pins, verification submits) are
// written one by one and acknowledged after the commit; refused requests, which an attacker can
// produce at will, are coalesced per window and written in one bounded batch (refusal_coalescer).
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/users/core/refusal_coalescer.hpp"
#include "actors/users/store.hpp"
#include "actors/users/users.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::users {

namespace {

constexpr std::uint32_t max_page = 500;

struct audit_state {
  static inline const char* name = "sbm.audit";
  audit_settings settings;
  refusal_coalescer window{1};
  std::shared_ptr<spdlog::logger> log = sbm::log::get("audit");
  std::unique_ptr<store> db;  // the family's port
};

using self_ptr = audit_actor::stateful_pointer<audit_state>;

caf::error invalid(std::string what) {
  return make_error(errc::invalid_argument, std::move(what));
}

bool known_kind(const std::string& kind) {
  return kind == "user" || kind == "service" || kind == "anonymous";
}

std::optional<caf::error> check_record(const audit_record& r) {
  if (r.actor.empty() || !known_kind(r.actor_kind))
    return invalid("an audit record needs an actor and a kind (user, service, anonymous)");
  if (r.action.empty())
    return invalid("an audit record needs an action");
  if (r.outcome != "success" && r.outcome != "refused")
    return invalid("an audit record's outcome is success or refused");
  return std::nullopt;
}

std::string detail_or_empty(const std::string& detail) {
  return detail.empty() ? std::string{"{}"} : detail;
}

caf::result<bool> on_append(self_ptr self, const audit_record& r) {
  if (auto e = check_record(r))
    return *e;
  auto row = r;
  row.detail = detail_or_empty(r.detail);
  auto rp = self->make_response_promise<bool>();
  self->state.db->append(row, [rp](caf::expected<bool> ok) mutable {
    if (!ok) return void(rp.deliver(db::failure(ok.error())));
    rp.deliver(true);
  });
  return rp;
}

void on_refused(self_ptr self, audit_record& r) {
  if (check_record(r))
    return;  // nothing a caller could fix: a malformed refusal record is dropped
  refusal entry{std::move(r.actor), std::move(r.actor_kind), std::move(r.action),
                std::move(r.target), r.status, std::move(r.peer), detail_or_empty(r.detail)};
  if (self->state.window.add(std::move(entry)))
    self->delayed_send(self, self->state.settings.refusal_window, flush_atom::value);
}

void flush(self_ptr self) {
  auto& st = self->state;
  if (st.window.empty())
    return;
  auto batch = st.window.take();
  const auto rows = batch.rows.size();
  const auto dropped = batch.dropped;
  st.db->append_refusals(batch, st.settings.refusal_window, [self, rows, dropped](caf::expected<bool> ok) {
    // Refusal auditing is best effort by design: keeping failed windows would let an attacker
    // grow this actor's memory while the database is down.
    if (!ok)
      self->state.log->warn("{} coalesced refusal rows ({} more uncounted) not written: {}", rows, dropped,
                            self->system().render(ok.error()));
  });
}

caf::result<audit_page> on_list(self_ptr self, const audit_query& q) {
  if (q.before_id < 0)
    return invalid("cursor must be positive");
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  auto rp = self->make_response_promise<audit_page>();
  self->state.db->list_audit(q, limit, [rp](caf::expected<audit_page> page) mutable {
    if (!page) return void(rp.deliver(db::failure(page.error())));
    rp.deliver(std::move(*page));
  });
  return rp;
}

audit_actor::behavior_type audit_fn(self_ptr self, audit_settings settings) {
  self->state.window = refusal_coalescer{settings.max_refusal_rows};
  self->state.settings = std::move(settings);
  auto& set = self->state.settings;
  auto link = db::make_store_link(self, set.db, set.db_timeout);
  self->state.db = set.make_store ? set.make_store(link) : make_postgres_store(link, std::chrono::seconds{0});
  return {
    [self](audit_atom, const audit_record& r) { return on_append(self, r); },
    [self](refused_atom, audit_record& r) { on_refused(self, r); },
    [self](flush_atom) { flush(self); },
    [self](list_atom, const audit_query& q) { return on_list(self, q); },
  };
}

}  // namespace

audit_actor spawn_audit(caf::actor_system& sys, audit_settings settings) {
  if (settings.max_refusal_rows == 0 || settings.refusal_window.count() <= 0)
    throw std::invalid_argument("the audit's refusal window needs a positive length and size");
  return sys.spawn(audit_fn, std::move(settings));
}

}  // namespace sbm::users
