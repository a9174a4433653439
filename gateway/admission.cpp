#include "gateway/admission.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <ctime>

#include "gateway/audit.hpp"
#include "gateway/auth/jwt.hpp"
#include "gateway/gateway_state.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

namespace {

const std::string* header(const http_request& req, std::string_view name) {
  for (const auto& h : req.headers)
    if (h.first == name)
      return &h.second;
  return nullptr;
}

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

bool within_rate(gateway_context& ctx, const http_request& req, const std::string& client) {
  auto decision = ctx.limiter.take(client, ctx.self->clock().now());
  if (decision.allowed)
    return true;
  auto seconds = std::to_string(decision.retry_after_seconds());
  auto r = problem(429, "rate-limited", "Too Many Requests",
                   "too many requests from this client; retry after " + seconds + " s");
  r.headers.emplace_back("Retry-After", seconds);
  ctx.reply(req, std::move(r));
  return false;
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
  auto token_scope = who.scope;  // from the token's claim alone (unlimited without one)
  if (standing.known) {
    // A service token names a subject too; when that subject is a registered user who has been
    // disabled, the token speaks for someone who may no longer act, so it is refused as well.
    if (standing.disabled)
      return forbid(ctx, req, who, "user '" + who.subject + "' is disabled");
    // A service's permissions come from the allow-list, never from a user's role.
    if (who.service_id.empty() && standing.role != who.role) {
      // A demotion takes effect within the cache's ttl, not when the token expires.
      std::string why;
      auto registered = make_principal(who.subject, standing.role, "", {}, ctx.settings.services, why);
      if (!registered)
        return forbid(ctx, req, who, why);
      who = std::move(*registered);
    }
    who.scope = narrow_scope(standing.scope, token_scope.limited, token_scope.client_ids);
  }
  if (!who.may(permission))
    return forbid(ctx, req, who,
                  who.describe() + " lacks permission '" + std::string{permission} + "'");
  next(req, who);
}

}  // namespace

bool within_peer_rate(gateway_context& ctx, const http_request& req) {
  return within_rate(ctx, req, "peer:" + req.peer);
}

void admit(gateway_context& ctx, const http_request& req, std::string_view permission,
           admitted next) {
  auto* auth_header = header(req, "authorization");
  if (!auth_header || auth_header->compare(0, 7, "Bearer ") != 0) {
    if (within_peer_rate(ctx, req))
      refuse(ctx, req, nullptr, unauthorized("missing bearer token"), "missing bearer token");
    return;
  }
  if (!ctx.settings.verifier) {
    if (within_peer_rate(ctx, req))
      refuse(ctx, req, nullptr, unauthorized("no token keys are configured on this node"),
             "no token keys are configured on this node");
    return;
  }
  auto token = std::string_view{*auth_header}.substr(7);
  auto verdict = ctx.settings.verifier->verify(token, static_cast<std::int64_t>(std::time(nullptr)));
  if (auto* err = std::get_if<auth::jwt_error>(&verdict)) {
    if (!within_peer_rate(ctx, req))
      return;
    std::string reason{auth::describe(*err)};
    sbm::log::get("gateway")->info("refused token from {}: {}", req.peer, reason);
    refuse(ctx, req, nullptr, unauthorized(reason), reason);
    return;
  }
  auto& claims = std::get<auth::jwt_claims>(verdict);
  bool is_service = !claims.service_id.empty();
  if (!within_rate(ctx, req, is_service ? "service:" + claims.service_id : "user:" + claims.subject))
    return;
  std::string why;
  auto who = make_principal(claims.subject, claims.role, claims.service_id, claims.permissions,
                            ctx.settings.services, why);
  if (who)
    who->scope = narrow_scope({}, claims.has_client_ids, claims.client_ids);
  if (!who) {
    // The token is genuine but names nobody this node admits; it still says who sent it.
    principal claimed;
    claimed.subject = claims.subject;
    claimed.service_id = claims.service_id;
    return forbid(ctx, req, claimed, why);
  }
  if (!ctx.settings.users)
    return finish(ctx, req, std::move(*who), {}, permission, next);
  auto now = ctx.self->clock().now();
  if (auto cached = ctx.standings.find(who->subject, now))
    return finish(ctx, req, std::move(*who), *cached, permission, next);
  ctx.self
    ->request(ctx.settings.users, ctx.hop(), check_atom::value, who->subject)
    .then(
      [&ctx, req, who = *who, permission = std::string{permission}, next](user_standing& s) {
        user_standing_entry entry{s.known, s.disabled, s.role, s.scope};
        ctx.standings.remember(who.subject, entry, ctx.self->clock().now());
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
