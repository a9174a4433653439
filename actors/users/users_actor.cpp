// Registered users. Every change is written together with its audit row in one statement, so a
// change is never on record without its audit entry, nor the other way round.
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/users/users.hpp"
#include "messages/errors.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::users {

namespace {

constexpr std::size_t max_display_name_bytes = 256;

constexpr const char* user_columns =
  "id, role, display_name, disabled, (extract(epoch FROM created_at) * 1000)::bigint, "
  "(extract(epoch FROM updated_at) * 1000)::bigint, array_to_json(client_ids)::text";

struct users_state {
  static inline const char* name = "sbm.users";
  users_settings settings;
};

using self_ptr = users_actor::stateful_pointer<users_state>;

caf::error invalid(std::string what) {
  return make_error(errc::invalid_argument, std::move(what));
}

bool control_free(const std::string& text) {
  return std::none_of(text.begin(), text.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

// The gateway validates first; this keeps the actor safe for any other caller.
std::optional<caf::error> check_id(const std::string& id) {
  if (auto why = domain::id_problem(id)) return invalid("user id " + *why);
  return std::nullopt;
}

std::optional<caf::error> check_role(const std::string& role) {
  if (!domain::is_one_of(domain::user_roles, role))
    return invalid("role must be " + domain::choices_text(domain::user_roles));
  return std::nullopt;
}

std::optional<caf::error> check_display_name(const std::string& name) {
  if (name.size() > max_display_name_bytes || !control_free(name))
    return invalid("display_name must be at most 256 bytes without control characters");
  return std::nullopt;
}

constexpr std::size_t max_scope_clients = 1000;

// Each client_id is an identifier like the ones speakers carry; sorted and unique, so two equal
// scopes are stored (and compared) the same way.
std::optional<caf::error> check_scope(client_scope& scope) {
  if (!scope.limited)
    return std::nullopt;
  if (scope.client_ids.size() > max_scope_clients)
    return invalid("client_ids may name at most 1000 clients");
  for (const auto& c : scope.client_ids)
    if (auto why = domain::id_problem(c)) return invalid("each of client_ids: a client id " + *why);
  std::sort(scope.client_ids.begin(), scope.client_ids.end());
  scope.client_ids.erase(std::unique(scope.client_ids.begin(), scope.client_ids.end()),
                         scope.client_ids.end());
  return std::nullopt;
}

caf::optional<std::string> scope_value(const client_scope& scope) {
  return db::scope_param(scope);
}

std::optional<caf::error> check_origin(const audit_origin& by) {
  if (by.actor.empty() || (by.actor_kind != "user" && by.actor_kind != "service"))
    return invalid("a user change needs an authenticated actor");
  return std::nullopt;
}

user_record read_user(const db_row& row) {
  if (row.size() < 7)
    throw std::runtime_error("short row");
  user_record u;
  u.id = db::text_column(row, 0);
  u.role = db::text_column(row, 1);
  u.display_name = db::text_column(row, 2);
  u.disabled = db::bool_column(row, 3);
  u.created_at_ms = db::int_column(row, 4);
  u.updated_at_ms = db::int_column(row, 5);
  u.scope.limited = static_cast<bool>(row[6]);
  u.scope.client_ids = db::text_array_column(row, 6);
  return u;
}

// Runs one statement and turns its (at most one) row into the answer; `when_empty` when none.
template <class T, class Convert>
caf::result<T> one_row(self_ptr self, db_statement stmt, caf::error when_empty, Convert convert) {
  auto rp = self->template make_response_promise<T>();
  self->request(self->state.settings.db, self->state.settings.db_timeout, query_atom::value,
                std::move(stmt))
    .then(
      [rp, when_empty, convert](db_rows& rows) mutable {
        try {
          if (rows.rows.empty())
            rp.deliver(when_empty);
          else
            rp.deliver(convert(&rows.rows.front()));
        } catch (const std::exception& e) {
          rp.deliver(make_error(errc::internal, std::string{"corrupt users row: "} + e.what()));
        }
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

constexpr const char* keys_table = "users.idempotency_keys";

// A keyed change is [the change, its key]: the key stores the user row as the change left it.
// The change must then return exactly one row, so "no such user" or "exists already" rolls the key
// back too and is looked up: a retry of a change that committed finds its answer.
caf::result<user_record> keyed_change(self_ptr self, db_statement change, const request_context& ctx,
                                      const std::string& user_id, caf::error when_empty) {
  db_transaction tx;
  tx.until = ctx.until;
  change.expect_rows = 1;
  tx.statements.push_back(std::move(change));
  tx.statements.push_back(db::idempotency::store(
    keys_table, ctx, 0,
    std::string{"json_build_array("} + user_columns + ")::text FROM users.users WHERE id = $5",
    {user_id}));
  auto rp = self->make_response_promise<user_record>();
  auto& st = self->state;
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then(
      [rp](db_results& res) mutable {
        try {
          rp.deliver(read_user(res.results.at(0).rows.at(0)));
        } catch (const std::exception& e) {
          rp.deliver(make_error(errc::internal, std::string{"corrupt users row: "} + e.what()));
        }
      },
      [self, rp, ctx, when_empty](caf::error& e) mutable {
        if (code_of(e) != errc::conflict) {
          rp.deliver(outcome_unknown(e)
                       ? make_error(errc::outcome_unknown, "the user change may or may not have been saved")
                       : db::failure(e));
          return;
        }
        auto otherwise = info_of(e).statement == 1 ? db::idempotency::in_progress(ctx) : when_empty;
        auto& st = self->state;
        self->request(st.settings.db, st.settings.db_timeout, query_atom::value,
                      db::idempotency::lookup(keys_table, ctx, st.settings.idempotency_retention))
          .then(
            [rp, ctx, otherwise](db_rows& rows) mutable {
              try {
                auto found = db::idempotency::judge(rows, ctx);
                if (found.v == db::idempotency::verdict::absent)
                  rp.deliver(otherwise);
                else if (found.v == db::idempotency::verdict::reused)
                  rp.deliver(db::idempotency::reused(ctx));
                else if (found.stored.outcome != 0)
                  rp.deliver(db::idempotency::refusal_of(found.stored));
                else
                  rp.deliver(read_user(db::idempotency::row_of_answer(found.stored.answer)));
              } catch (const std::exception& ex) {
                rp.deliver(make_error(errc::internal, std::string{"unreadable stored answer: "} + ex.what()));
              }
            },
            [rp](caf::error& e) mutable {
              rp.deliver(make_error(errc::outcome_unknown, "the Idempotency-Key could not be checked: " +
                                                             detail_of(db::failure(e))));
            });
      });
  return rp;
}

caf::result<user_record> on_create(self_ptr self, user_creation c) {
  auto& u = c.user;
  if (auto e = check_scope(u.scope)) return *e;
  if (auto e = check_id(u.id)) return *e;
  if (auto e = check_role(u.role)) return *e;
  if (auto e = check_display_name(u.display_name)) return *e;
  if (auto e = check_origin(c.by)) return *e;
  db_statement stmt{
    std::string{"WITH created AS ("
                "  INSERT INTO users.users (id, role, display_name, disabled, client_ids)"
                "  VALUES ($1, $2, $3, $4::boolean, $9::text[]) ON CONFLICT (id) DO NOTHING"
                "  RETURNING *),"
                " logged AS ("
                "  INSERT INTO users.audit_log"
                "    (actor, actor_kind, action, target, outcome, status, peer, detail)"
                "  SELECT $5, $6, $8, id, 'success', 201, $7,"
                "    jsonb_build_object('role', role, 'display_name', display_name,"
                "                       'disabled', disabled, 'client_ids', client_ids)"
                "  FROM created)"
                " SELECT "} + user_columns + " FROM created",
    {u.id, u.role, u.display_name, std::string{u.disabled ? "true" : "false"}, c.by.actor,
     c.by.actor_kind, c.by.peer, std::string{audit_action::user_create}, scope_value(u.scope)},
    -1};
  auto exists = make_error(errc::duplicate, "a user with this id already exists");
  if (c.ctx.keyed()) return keyed_change(self, std::move(stmt), c.ctx, u.id, std::move(exists));
  return one_row<user_record>(self, std::move(stmt), std::move(exists),
                              [](const db_row* row) { return read_user(*row); });
}

caf::result<user_record> on_update(self_ptr self, user_update c) {
  if (auto e = check_id(c.id)) return *e;
  if (c.set_scope)
    if (auto e = check_scope(c.scope)) return *e;
  if (c.set_role)
    if (auto e = check_role(c.role)) return *e;
  if (c.set_display_name)
    if (auto e = check_display_name(c.display_name)) return *e;
  if (auto e = check_origin(c.by)) return *e;
  if (!c.set_role && !c.set_display_name && !c.set_disabled && !c.set_scope)
    return invalid("nothing to change: give role, display_name, disabled or client_ids");
  caf::optional<std::string> role, display_name, disabled;
  if (c.set_role) role = c.role;
  if (c.set_display_name) display_name = c.display_name;
  if (c.set_disabled) disabled = std::string{c.disabled ? "true" : "false"};
  // $9 says whether client_ids changes at all, $10 is the new value (NULL lifts the limit).
  caf::optional<std::string> set_scope = std::string{c.set_scope ? "true" : "false"};
  // The row is locked before it is read for the audit's "before", so two concurrent updates are
  // recorded in the order they happened, each with the other's result as its "before".
  db_statement stmt{
    std::string{"WITH before AS ("
                "  SELECT id, role, display_name, disabled, client_ids FROM users.users"
                "  WHERE id = $1 FOR UPDATE),"
                " changed AS ("
                "  UPDATE users.users u SET role = coalesce($2, u.role),"
                "    display_name = coalesce($3, u.display_name),"
                "    disabled = coalesce($4::boolean, u.disabled),"
                "    client_ids = CASE WHEN $9::boolean THEN $10::text[] ELSE u.client_ids END,"
                "    updated_at = now()"
                "  FROM before WHERE u.id = before.id"
                "  RETURNING u.*),"
                " logged AS ("
                "  INSERT INTO users.audit_log"
                "    (actor, actor_kind, action, target, outcome, status, peer, detail)"
                "  SELECT $5, $6, $8, changed.id, 'success', 200, $7,"
                "    jsonb_build_object("
                "      'before', jsonb_build_object('role', before.role,"
                "        'display_name', before.display_name, 'disabled', before.disabled,"
                "        'client_ids', before.client_ids),"
                "      'after', jsonb_build_object('role', changed.role,"
                "        'display_name', changed.display_name, 'disabled', changed.disabled,"
                "        'client_ids', changed.client_ids))"
                "  FROM before JOIN changed ON changed.id = before.id)"
                " SELECT "} + user_columns + " FROM changed",
    {c.id, role, display_name, disabled, c.by.actor, c.by.actor_kind, c.by.peer,
     std::string{audit_action::user_update}, set_scope, scope_value(c.scope)},
    -1};
  auto missing = make_error(errc::not_found, "no such user");
  if (c.ctx.keyed()) return keyed_change(self, std::move(stmt), c.ctx, c.id, std::move(missing));
  return one_row<user_record>(self, std::move(stmt), std::move(missing),
                              [](const db_row* row) { return read_user(*row); });
}

caf::result<user_record> on_get(self_ptr self, const std::string& id) {
  if (auto e = check_id(id)) return *e;
  db_statement stmt{std::string{"SELECT "} + user_columns + " FROM users.users WHERE id = $1",
                    {id}, -1};
  return one_row<user_record>(self, std::move(stmt), make_error(errc::not_found, "no such user"),
                              [](const db_row* row) { return read_user(*row); });
}

caf::result<user_standing> on_check(self_ptr self, const std::string& id) {
  if (auto e = check_id(id)) {
    // A subject SBM could never have registered is simply not a registered user.
    user_standing unknown;
    unknown.id = id;
    return unknown;
  }
  db_statement stmt{"SELECT disabled, role, array_to_json(client_ids)::text FROM users.users WHERE id = $1", {id}, -1};
  user_standing unknown;
  unknown.id = id;
  auto rp = self->make_response_promise<user_standing>();
  self->request(self->state.settings.db, self->state.settings.db_timeout, query_atom::value,
                std::move(stmt))
    .then(
      [rp, unknown](db_rows& rows) mutable {
        if (rows.rows.empty()) {
          rp.deliver(unknown);
          return;
        }
        try {
          auto standing = unknown;
          standing.known = true;
          standing.disabled = db::bool_column(rows.rows.front(), 0);
          standing.role = db::text_column(rows.rows.front(), 1);
          standing.scope.limited = static_cast<bool>(rows.rows.front().at(2));
          standing.scope.client_ids = db::text_array_column(rows.rows.front(), 2);
          rp.deliver(std::move(standing));
        } catch (const std::exception& e) {
          rp.deliver(make_error(errc::internal, std::string{"corrupt users row: "} + e.what()));
        }
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

users_actor::behavior_type users_fn(self_ptr self, users_settings settings) {
  self->state.settings = std::move(settings);
  self->send(self, flush_atom::value);
  return {
    [self](flush_atom) {
      auto& st = self->state;
      self->request(st.settings.db, st.settings.db_timeout, query_atom::value,
                    db::idempotency::purge(keys_table, st.settings.idempotency_retention))
        .then([](db_rows&) {}, [](caf::error&) {});  // the next hour tries again
      self->delayed_send(self, std::chrono::hours{1}, flush_atom::value);
    },
    [self](register_atom, user_creation& c) { return on_create(self, std::move(c)); },
    [self](update_atom, user_update& c) { return on_update(self, std::move(c)); },
    [self](get_atom, const std::string& id) { return on_get(self, id); },
    [self](check_atom, const std::string& id) { return on_check(self, id); },
  };
}

}  // namespace

users_actor spawn_users(caf::actor_system& sys, users_settings settings) {
  return sys.spawn(users_fn, std::move(settings));
}

}  // namespace sbm::users
