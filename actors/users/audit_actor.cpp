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
#include "actors/users/users.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::users {

namespace {

constexpr std::uint32_t max_page = 500;

constexpr const char* insert_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail)"
  " VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb)";

// A record that concerns one client carries it, so scoped readers see it (and only theirs).
constexpr const char* insert_client_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail,"
  " client_id) VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb, coalesce($9, ''))";

// A record delivered from another family's outbox: once per key, however often it comes.
constexpr const char* insert_keyed_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail,"
  " client_id, source_key) VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8::jsonb,"
  " coalesce($9, ''), $10)"
  " ON CONFLICT (source_key) WHERE source_key IS NOT NULL DO NOTHING";

// The count of a coalesced refusal goes into its detail, next to what the first one said.
constexpr const char* insert_refusal_sql =
  "INSERT INTO users.audit_log (actor, actor_kind, action, target, outcome, status, peer, detail)"
  " VALUES ($1, $2, $3, $4, 'refused', $5::integer, $6,"
  "         $7::jsonb || jsonb_build_object('count', $8::bigint, 'window_ms', $9::bigint))";

struct audit_state {
  static inline const char* name = "sbm.audit";
  audit_settings settings;
  refusal_coalescer window{1};
  std::shared_ptr<spdlog::logger> log = sbm::log::get("audit");
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
  db_statement stmt{r.source_key.empty() ? insert_client_sql : insert_keyed_sql,
                    {r.actor, r.actor_kind, r.action, r.target, r.outcome, std::to_string(r.status),
                     r.peer, detail_or_empty(r.detail), r.client_id},
                    r.source_key.empty() ? 1 : -1};
  if (!r.source_key.empty())
    stmt.params.emplace_back(r.source_key);
  auto rp = self->make_response_promise<bool>();
  self->request(self->state.settings.db, self->state.settings.db_timeout, query_atom::value,
                std::move(stmt))
    .then([rp](db_rows&) mutable { rp.deliver(true); },
          [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
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
  const auto window_ms = std::to_string(st.settings.refusal_window.count());
  db_transaction tx;
  for (auto& row : batch.rows) {
    auto& f = row.first;
    tx.statements.push_back({insert_refusal_sql,
                             {std::move(f.actor), std::move(f.actor_kind), std::move(f.action),
                              std::move(f.target), std::to_string(f.status), std::move(f.peer),
                              std::move(f.detail), std::to_string(row.count), window_ms},
                             1});
  }
  if (batch.dropped > 0)
    tx.statements.push_back({insert_sql,
                             {std::string{"anonymous"}, std::string{"anonymous"},
                              std::string{audit_action::refusals_dropped}, std::string{},
                              std::string{"refused"}, std::string{"0"}, std::string{},
                              "{\"dropped\": " + std::to_string(batch.dropped) +
                                ", \"window_ms\": " + window_ms + "}"},
                             1});
  auto rows = batch.rows.size();
  auto dropped = batch.dropped;
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then([](db_results&) {},
          [self, rows, dropped](caf::error& e) {
            // Refusal auditing is best effort by design: keeping failed windows would let an
            // attacker grow this actor's memory while the database is down.
            self->state.log->warn("{} coalesced refusal rows ({} more uncounted) not written: {}",
                                  rows, dropped, self->system().render(e));
          });
}

audit_record read_record(const db_row& row) {
  if (row.size() < 11)
    throw std::runtime_error("short row");
  audit_record r;
  r.id = db::int_column(row, 0);
  r.at_ms = db::int_column(row, 1);
  r.actor = db::text_column(row, 2);
  r.actor_kind = db::text_column(row, 3);
  r.action = db::text_column(row, 4);
  r.target = db::text_column(row, 5);
  r.outcome = db::text_column(row, 6);
  r.status = static_cast<std::int32_t>(db::int_column(row, 7));
  r.peer = db::text_column(row, 8);
  r.detail = db::text_column(row, 9);
  r.client_id = db::text_column(row, 10);
  return r;
}

caf::result<audit_page> on_list(self_ptr self, const audit_query& q) {
  caf::optional<std::string> actor, action, from, to, before;
  if (!q.actor.empty()) actor = q.actor;
  if (!q.action.empty()) action = q.action;
  if (q.has_from) from = std::to_string(q.from_ms);
  if (q.has_to) to = std::to_string(q.to_ms);
  if (q.before_id < 0)
    return invalid("cursor must be positive");
  if (q.before_id > 0) before = std::to_string(q.before_id);
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  // Every filter is a bound parameter; one more row than asked tells whether a next page exists.
  db_statement stmt{
    "SELECT id, (extract(epoch FROM at) * 1000)::bigint, actor, actor_kind, action, target,"
    " outcome, status, peer, detail::text, client_id FROM users.audit_log"
    " WHERE ($1::text IS NULL OR actor = $1)"
    "   AND ($2::text IS NULL OR action = $2)"
    "   AND ($3::bigint IS NULL OR at >= to_timestamp($3::bigint / 1000.0))"
    "   AND ($4::bigint IS NULL OR at < to_timestamp($4::bigint / 1000.0))"
    "   AND ($5::bigint IS NULL OR id < $5::bigint)"
    "   AND " + db::scope_clause("client_id", 7) +
    " ORDER BY id DESC LIMIT $6::integer",
    {actor, action, from, to, before, std::to_string(limit + 1), db::scope_param(q.scope)},
    -1};
  auto rp = self->make_response_promise<audit_page>();
  self->request(self->state.settings.db, self->state.settings.db_timeout, query_atom::value,
                std::move(stmt))
    .then(
      [rp, limit](db_rows& rows) mutable {
        audit_page page;
        try {
          for (const auto& row : rows.rows) {
            if (page.items.size() == limit) {
              page.next_before_id = page.items.back().id;
              break;
            }
            page.items.push_back(read_record(row));
          }
        } catch (const std::exception& e) {
          rp.deliver(make_error(errc::internal, std::string{"corrupt audit row: "} + e.what()));
          return;
        }
        rp.deliver(std::move(page));
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

audit_actor::behavior_type audit_fn(self_ptr self, audit_settings settings) {
  self->state.window = refusal_coalescer{settings.max_refusal_rows};
  self->state.settings = std::move(settings);
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
