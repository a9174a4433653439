// Registered users. Every change is written together with its audit row in one statement, so a
// change is never on record without its audit entry, nor the other way round.
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "actors/users/store.hpp"
#include "actors/users/users.hpp"
#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/ids.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::users {

namespace {

constexpr std::size_t max_display_name_bytes = 256;

struct users_state {
  static inline const char* name = "sbm.users";
  users_settings settings;
  std::unique_ptr<store> db;  // the family's port
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

std::optional<caf::error> check_origin(const audit_origin& by) {
  if (by.actor.empty() || (by.actor_kind != "user" && by.actor_kind != "service"))
    return invalid("a user change needs an authenticated actor");
  return std::nullopt;
}

// A change's answer: the user, or why not. A change whose answer was lost may have committed.
caf::result<user_record> answer_change(self_ptr self, bool keyed, std::function<void(completion<user_record>)> run) {
  auto rp = self->make_response_promise<user_record>();
  run([rp, keyed](caf::expected<user_record> u) mutable {
    if (u) return void(rp.deliver(std::move(*u)));
    if (keyed && outcome_unknown(u.error()))
      return void(rp.deliver(make_error(errc::outcome_unknown, "the user change may or may not have been saved")));
    rp.deliver(db::failure(u.error()));
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
  return answer_change(self, c.ctx.keyed(), [self, c](completion<user_record> done) {
    self->state.db->create_user(c, std::move(done));
  });
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
  return answer_change(self, c.ctx.keyed(), [self, c](completion<user_record> done) {
    self->state.db->update_user(c, std::move(done));
  });
}

caf::result<user_record> on_get(self_ptr self, const std::string& id) {
  if (auto e = check_id(id)) return *e;
  auto rp = self->make_response_promise<user_record>();
  self->state.db->user(id, [rp](caf::expected<caf::optional<user_record>> u) mutable {
    if (!u) return void(rp.deliver(db::failure(u.error())));
    if (!*u) return void(rp.deliver(make_error(errc::not_found, "no such user")));
    rp.deliver(std::move(**u));
  });
  return rp;
}

caf::result<user_standing> on_check(self_ptr self, const std::string& id) {
  if (auto e = check_id(id)) {
    // A subject SBM could never have registered is simply not a registered user.
    user_standing unknown;
    unknown.id = id;
    return unknown;
  }
  auto rp = self->make_response_promise<user_standing>();
  self->state.db->standing(id, [rp](caf::expected<user_standing> s) mutable {
    if (!s) return void(rp.deliver(db::failure(s.error())));
    rp.deliver(std::move(*s));
  });
  return rp;
}

users_actor::behavior_type users_fn(self_ptr self, users_settings settings) {
  self->state.settings = std::move(settings);
  auto& set = self->state.settings;
  auto link = db::make_store_link(self, set.db, set.db_timeout);
  self->state.db = set.make_store ? set.make_store(link) : make_postgres_store(link, set.idempotency_retention);
  self->send(self, flush_atom::value);
  return {
    [self](flush_atom) {
      auto& st = self->state;
      st.db->purge_keys(st.settings.idempotency_retention, [](caf::expected<bool>) {});  // the next hour tries again
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
