#include "gateway/admission.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "gateway/audit.hpp"
#include "gateway/gateway_state.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

namespace {

http_response unauthorized(std::string detail) {
  auto r = problem(401, "unauthorized", "Unauthorized", detail);
  std::string challenge = "Bearer realm=\"sbm\", error=\"invalid_token\", error_description=\"";
  for (char c : detail)
    if (c != '"' && c != '\\')
      challenge += c;
  challenge += '"';
  r.headers.emplace_back("WWW-Authenticate", std::move(challenge));
  return r;
}

void refuse(gateway_context& ctx, const http_request& req, const principal* who,
            http_response response, const std::string& reason) {
  audit_refusal(ctx, req, who, response.status, reason);
  ctx.reply(req, std::move(response));
}

void forbid(gateway_context& ctx, const http_request& req, const principal& who,
            const std::string& reason) {
  refuse(ctx, req, &who, problem(403, "forbidden", "Forbidden", reason), reason);
}

// The last two steps: the registered standing (already known here) and the route's permission.
void finish(gateway_context& ctx, const http_request& req, principal who,
            const user_standing_entry& standing, std::string_view permission,
            const admitted& next) {
  auto verdict = apply_standing(std::move(who), standing, permission, ctx.settings.services);
  if (!verdict.refusal.empty())
    return forbid(ctx, req, verdict.who, verdict.refusal);
  next(req, verdict.who);
}

}  // namespace

std::optional<principal> token_principal(const token_verdict& token,
                                         const service_allow_list& services, std::string& why) {
  auto who = make_principal(token.subject, token.role, token.service_id, token.permissions,
                            services, why);
  if (who)
    who->scope = narrow_scope({}, token.has_client_ids, token.client_ids);
  return who;
}

standing_verdict apply_standing(principal who, const user_standing_entry& standing,
                                std::string_view permission, const service_allow_list& services) {
  auto token_scope = who.scope;  // from the token's claim alone (unlimited without one)
  if (standing.known) {
    // A service token names a subject too; when that subject is a registered user who has been
    // disabled, the token speaks for someone who may no longer act, so it is refused as well.
    if (standing.disabled) {
      auto why = "user '" + who.subject + "' is disabled";
      return {std::move(who), std::move(why)};
    }
    // A service's permissions come from the allow-list, never from a user's role.
    if (who.service_id.empty() && standing.role != who.role) {
      // A demotion takes effect within the cache's ttl, not when the token expires.
      std::string why;
      auto registered = make_principal(who.subject, standing.role, "", {}, services, why);
      if (!registered)
        return {std::move(who), why};
      who = std::move(*registered);
    }
    who.scope = narrow_scope(standing.scope, token_scope.limited, token_scope.client_ids);
  }
  if (!who.may(permission)) {
    auto why = who.describe() + " lacks permission '" + std::string{permission} + "'";
    return {std::move(who), std::move(why)};
  }
  return {std::move(who), {}};
}

void admit(gateway_context& ctx, const http_request& req, std::string_view permission,
           admitted next) {
  // The front door verified the token on the HTTP thread and counted the request's rate.
  const auto& token = req.token;
  if (token.state == token_state::absent)
    return refuse(ctx, req, nullptr, unauthorized("missing bearer token"), "missing bearer token");
  if (token.state == token_state::refused) {
    sbm::log::get("gateway")->info("[{}] refused token from {}: {}", req.request_id, req.peer,
                                   token.refusal);
    return refuse(ctx, req, nullptr, unauthorized(token.refusal), token.refusal);
  }
  std::string why;
  auto who = token_principal(token, ctx.settings.services, why);
  if (!who) {
    // The token is genuine but names nobody this node admits; it still says who sent it.
    principal claimed;
    claimed.subject = token.subject;
    claimed.service_id = token.service_id;
    return forbid(ctx, req, claimed, why);
  }
  if (!ctx.settings.users)
    return finish(ctx, req, std::move(*who), {}, permission, next);
  auto now = ctx.self->clock().now();
  if (auto cached = ctx.settings.standings->find(who->subject, now))
    return finish(ctx, req, std::move(*who), *cached, permission, next);
  ctx.self
    ->request(ctx.settings.users, ctx.hop(), check_atom::value, who->subject)
    .then(
      [&ctx, req, who = *who, permission = std::string{permission}, next](user_standing& s) {
        user_standing_entry entry{s.known, s.disabled, s.role, s.scope};
        ctx.settings.standings->remember(who.subject, entry, ctx.self->clock().now());
        finish(ctx, req, who, entry, permission, next);
      },
      [&ctx, req, who = *who, permission = std::string{permission}, next](caf::error& err) {
        // The operator's view of the node must answer exactly when the users' database does not:
        // for it the token decides alone (the registered standing is applied when it can be read).
        if (permission == permission::ops_read)
          return finish(ctx, req, who, {}, permission, next);
        ctx.reply(req, from_error(err));
      });
}

}  // namespace sbm::gateway
