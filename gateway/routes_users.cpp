// Users (admin) and the audit log (qa_lead, admin) over HTTP: strict validation of what clients
// send, one message to the users or audit actor, then JSON. Filters reach SQL only as bound
// parameters, and timestamps are parsed here before they are passed on as numbers.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/readers.hpp"
#include "gateway/timestamps.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

constexpr std::size_t max_display_name_bytes = 256;
constexpr std::size_t max_filter_bytes = 256;
constexpr std::uint32_t default_audit_page = 100;
constexpr std::uint32_t max_audit_page = 500;

json timestamp_or_null(std::int64_t ms) {
  return ms == 0 ? json(nullptr) : json(format_timestamp_ms(ms));
}

json to_json(const user_record& u) {
  return {{"id", u.id},
          {"role", u.role},
          {"display_name", u.display_name},
          {"disabled", u.disabled},
          {"client_ids", u.scope.limited ? json(u.scope.client_ids) : json(nullptr)},
          {"created_at", timestamp_or_null(u.created_at_ms)},
          {"updated_at", timestamp_or_null(u.updated_at_ms)}};
}

json to_json(const audit_record& r) {
  // The detail column is jsonb, so it parses; a failure would mean a corrupt row, shown as text.
  auto detail = json::parse(r.detail, nullptr, false);
  if (detail.is_discarded())
    detail = r.detail;
  return {{"id", r.id},         {"at", timestamp_or_null(r.at_ms)},
          {"actor", r.actor},   {"actor_kind", r.actor_kind},
          {"action", r.action}, {"target", r.target},
          {"outcome", r.outcome}, {"status", r.status},
          {"peer", r.peer},     {"detail", std::move(detail)},
          {"client_id", r.client_id.empty() ? json(nullptr) : json(r.client_id)}};
}

std::string percent_encode(const std::string& text) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void reply_problem(const gateway_context& ctx, const http_request& req, std::string detail,
                   std::string_view field = {}) {
  ctx.reply(req, problem(400, field.empty() ? "malformed-body" : "invalid-field", "Bad Request",
                         std::move(detail), field));
}

constexpr std::size_t max_scope_clients = 1000;

// "client_ids": null lifts the limit, an array of client ids sets it (empty: no client at all).
// False when malformed (400 sent). A scoped administrator may only hand out clients of its own
// scope, so it cannot make a user (or itself) reach further than it does (403 sent).
bool read_client_ids(const gateway_context& ctx, const http_request& req, const json& body,
                     const principal& who, client_scope& out) {
  const auto& v = body.at("client_ids");
  out = {};
  if (!v.is_null()) {
    if (!v.is_array() || v.size() > max_scope_clients) {
      reply_problem(ctx, req, "field 'client_ids' must be null or an array of at most 1000 client ids",
                    "client_ids");
      return false;
    }
    out.limited = true;
    for (const auto& c : v) {
      if (!c.is_string() || id_problem(c.get<std::string>())) {
        reply_problem(ctx, req, "each of 'client_ids' must be a client id (1 to 128 bytes, no control "
                                "characters or '/')", "client_ids");
        return false;
      }
      out.client_ids.push_back(c.get<std::string>());
    }
  }
  bool within = !who.scope.limited ||
                (out.limited && std::all_of(out.client_ids.begin(), out.client_ids.end(),
                                            [&](const std::string& c) { return who.scope.admits(c); }));
  if (!within) {
    ctx.reply(req, problem(403, "forbidden", "Forbidden",
                           "field 'client_ids' reaches clients outside your own scope", "client_ids"));
    return false;
  }
  return true;
}

// A scoped administrator manages only users inside its own scope: anyone else (an unscoped user,
// or one reaching another client) reads as missing, like an unknown id.
bool manages(const principal& who, const user_record& u) {
  if (!who.scope.limited)
    return true;
  return u.scope.limited && std::all_of(u.scope.client_ids.begin(), u.scope.client_ids.end(),
                                        [&](const std::string& c) { return who.scope.admits(c); });
}

void reply_user(gateway_context& ctx, const http_request& req, const user_record& u,
                std::uint16_t status) {
  auto r = json_response(status, to_json(u));
  if (status == 201)
    r.headers.emplace_back("Location", "/v1/users/" + percent_encode(u.id));
  ctx.reply(req, std::move(r));
}

void create_user(gateway_context& ctx, const http_request& req, const principal& who) {
  auto body = body_object(ctx, req, {"id", "role", "display_name", "disabled", "client_ids"});
  if (!body)
    return;
  user_creation c;
  field_reader f{*body};
  f.identifier("id", c.user.id, true);
  f.choice("role", c.user.role, true, domain::user_roles);
  f.text("display_name", c.user.display_name, false, max_display_name_bytes);
  std::optional<bool> disabled;
  f.optional_boolean("disabled", disabled);
  if (f.failed())
    return ctx.reply(req, f.to_problem());
  c.user.disabled = disabled.value_or(false);
  // A scoped administrator's new users are scoped too: without client_ids they get its own scope.
  c.user.scope = who.scope;
  if (body->contains("client_ids") && !read_client_ids(ctx, req, *body, who, c.user.scope))
    return;
  c.by = origin_of(who, req);
  c.ctx = ctx.work_context(req, who);
  ctx.self->request(ctx.settings.users, ctx.hop(), register_atom::value, c)
    .then(
      [&ctx, req](user_record& u) {
        ctx.forget_standing(u.id, [&ctx, req, u] { reply_user(ctx, req, u, 201); });
      },
      ctx.on_error(req));
}

void update_user(gateway_context& ctx, const http_request& req, const std::string& id,
                 const principal& who) {
  if (!path_id_ok(ctx, req, id, "user id", "id"))
    return;
  auto body = body_object(ctx, req, {"role", "display_name", "disabled", "client_ids"});
  if (!body)
    return;
  user_update u;
  u.id = id;
  field_reader f{*body};
  u.set_role = body->contains("role");
  if (u.set_role)
    f.choice("role", u.role, true, domain::user_roles);
  // null is no change for the other fields, but a display name given as null is a mistake.
  u.set_display_name = body->contains("display_name");
  if (u.set_display_name && !body->at("display_name").is_string())
    f.fail("display_name", "must be a string");
  f.text("display_name", u.display_name, false, max_display_name_bytes);
  std::optional<bool> disabled;
  f.optional_boolean("disabled", disabled);
  if (f.failed())
    return ctx.reply(req, f.to_problem());
  u.set_disabled = disabled.has_value();
  u.disabled = disabled.value_or(false);
  if (body->contains("client_ids")) {
    if (!read_client_ids(ctx, req, *body, who, u.scope))
      return;
    u.set_scope = true;
  }
  if (!u.set_role && !u.set_display_name && !u.set_disabled && !u.set_scope)
    return reply_problem(ctx, req, "nothing to change: give role, display_name, disabled or client_ids");
  u.by = origin_of(who, req);
  u.ctx = ctx.work_context(req, who);
  auto send = [&ctx, req](const user_update& change) {
    ctx.self->request(ctx.settings.users, ctx.hop(), update_atom::value, change)
      .then(
        [&ctx, req](user_record& record) {
          // This node applies the change from the next request on; other nodes within their ttl.
          ctx.forget_standing(record.id, [&ctx, req, record] { reply_user(ctx, req, record, 200); });
        },
        ctx.on_error(req));
  };
  if (!who.scope.limited)
    return send(u);
  // A scoped administrator first learns whether it manages this user (the scope cannot move
  // between the read and the change in a way that widens it: a new scope must be inside its own).
  ctx.self->request(ctx.settings.users, ctx.hop(), get_atom::value, id)
    .then(
      [&ctx, req, who, u, send](user_record& current) {
        if (!manages(who, current))
          return ctx.reply(req, problem(404, "not-found", "Not Found", "no such user"));
        send(u);
      },
      ctx.on_error(req, false));  // nothing was changed yet
}

void get_user(gateway_context& ctx, const http_request& req, const std::string& id,
              const principal& who) {
  if (!path_id_ok(ctx, req, id, "user id", "id"))
    return;
  ctx.self->request(ctx.settings.users, ctx.hop(), get_atom::value, id)
    .then(
      [&ctx, req, who](user_record& u) {
        if (!manages(who, u))
          return ctx.reply(req, problem(404, "not-found", "Not Found", "no such user"));
        reply_user(ctx, req, u, 200);
      },
      ctx.on_error(req));
}

void list_audit(gateway_context& ctx, const http_request& req, const principal& who) {
  query_reader in{ctx, req, {"actor", "action", "from", "to", "limit", "cursor"}};
  audit_query q;
  q.scope = who.scope;
  q.actor = in.text("actor", max_filter_bytes);
  q.action = in.text("action", max_filter_bytes);
  auto from = in.timestamp("from");
  auto to = in.timestamp("to");
  q.has_from = from.has_value();
  q.from_ms = from.value_or(0);
  q.has_to = to.has_value();
  q.to_ms = to.value_or(0);
  q.limit = in.limit("limit", default_audit_page, max_audit_page);
  q.before_id = in.cursor("cursor");
  if (in.ok && q.has_from && q.has_to && q.from_ms >= q.to_ms)
    in.fail("from", "must be earlier than 'to'");
  if (!in.ok)
    return;
  ctx.self->request(ctx.settings.audit, ctx.hop(), list_atom::value, q)
    .then(
      [&ctx, req](audit_page& page) {
        json items = json::array();
        for (const auto& r : page.items)
          items.push_back(to_json(r));
        json next = page.next_before_id > 0 ? json(std::to_string(page.next_before_id)) : json(nullptr);
        ctx.reply(req, json_response(200, {{"items", std::move(items)}, {"next_cursor", next}}));
      },
      ctx.on_error(req));
}

}  // namespace

void handle_users(gateway_context& ctx, route r, const http_request& req, const route_match& match,
                  const principal& who) {
  bool needs_users = r != route::audit_list;
  if ((needs_users && !ctx.settings.users) || (!needs_users && !ctx.settings.audit)) {
    auto response = problem(503, "unavailable", "Service Unavailable",
                            "user management is not running on this node");
    response.headers.emplace_back("Retry-After", "5");
    return ctx.reply(req, std::move(response));
  }
  switch (r) {
    case route::users_create: return create_user(ctx, req, who);
    case route::user_get: return get_user(ctx, req, match.params.at(0), who);
    case route::user_update: return update_user(ctx, req, match.params.at(0), who);
    case route::audit_list: return list_audit(ctx, req, who);
    default: ctx.reply(req, problem(404, "not-found", "Not Found", "no resource at this path"));
  }
}

}  // namespace sbm::gateway
