#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <ctime>

#include "gateway/admission.hpp"
#include "gateway/auth/jwt.hpp"
#include "gateway/gateway_state.hpp"
#include "gateway/idempotency_key.hpp"
#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

using nlohmann::json;

namespace {

struct route_spec {
  const char* method;
  const char* pattern;
  route id;
  std::string_view permission;  // empty: no authentication (liveness and readiness only)
};

const route_spec routes[] = {
  {"GET", "/healthz", route::healthz, {}},
  {"GET", "/readyz", route::readyz, {}},
  {"POST", "/v1/speakers", route::speakers_create, permission::speakers_write},
  {"GET", "/v1/speakers", route::speakers_list, permission::speakers_read},
  {"GET", "/v1/speakers/{id}", route::speaker_get, permission::speakers_read},
  {"GET", "/v1/speakers/{id}/bucket-history", route::speaker_history, permission::speakers_read},
  {"PUT", "/v1/speakers/{id}/bucket-pin", route::speaker_pin_put, permission::buckets_pin},
  {"DELETE", "/v1/speakers/{id}/bucket-pin", route::speaker_pin_delete, permission::buckets_pin},
  {"POST", "/v1/speakers/{id}/quality-samples", route::speaker_samples_post, permission::quality_write},
  {"GET", "/v1/verification-schedule", route::schedule_list, permission::schedule_read},
  // Draft text is clinical and pulled for verification work: QA roles, not every speakers.read.
  {"GET", "/v1/speakers/{id}/jobs", route::speaker_jobs, permission::schedule_read},
  {"POST", "/v1/users", route::users_create, permission::users_admin},
  {"GET", "/v1/users/{id}", route::user_get, permission::users_admin},
  {"PATCH", "/v1/users/{id}", route::user_update, permission::users_admin},
  {"GET", "/v1/audit", route::audit_list, permission::audit_read},
  {"POST", "/v1/error-reports", route::reports_create, permission::reports_write},
  {"GET", "/v1/error-reports", route::reports_list, permission::reports_read},
  {"GET", "/v1/error-reports/{id}", route::report_get, permission::reports_read},
  // The verification flow's verdict; until it exists, whoever may record quality may set it.
  {"PATCH", "/v1/error-reports/{id}", route::report_update, permission::quality_write},
  {"POST", "/v1/patterns/search", route::patterns_search, permission::reports_read},
  // The drafting pipeline's correction step (services granted it) and QA trying a draft.
  {"POST", "/v1/drafts/correct", route::drafts_correct, permission::drafts_correct},
  {"GET", "/v1/status", route::node_status, permission::ops_read},
};

const route_spec& spec_of(int id) {
  for (const auto& r : routes)
    if (static_cast<int>(r.id) == id)
      return r;
  return routes[0];
}

struct gateway_state {
  static inline const char* name = "gateway";
  gateway_context ctx;
  router table;
  std::shared_ptr<spdlog::logger> log = sbm::log::get("gateway");
};

// The operator's view of one dependency: its state and, from a connection supervisor, its
// breaker (window counts, rates against thresholds, trial calls, the last transition).
json operator_view(const dependency_status& d) {
  json out{{"name", d.name}, {"required", d.required}, {"up", d.up}, {"state", d.state},
           {"detail", d.detail}};
  if (!d.has_breaker)
    return out;
  const auto& b = d.breaker;
  json last = nullptr;
  if (b.transitions > 0)
    last = {{"from", b.last_from}, {"to", b.last_to}, {"ms_ago", b.last_transition_ms_ago}};
  out["breaker"] = {
      {"state", b.state},
      {"window", {{"type", b.window}, {"size", b.window_size}, {"minimum_calls", b.minimum_calls}}},
      {"calls", b.calls},
      {"failures", b.failures},
      {"slow_calls", b.slow_calls},
      {"failure_rate", b.failure_rate},
      {"failure_rate_threshold", b.failure_rate_threshold},
      {"slow_call_rate", b.slow_call_rate},
      {"slow_call_rate_threshold", b.slow_call_rate_threshold},
      {"slow_call_ms", b.slow_call_ms},
      {"half_open_calls", b.trial_calls},
      {"trials_in_flight", b.trials_in_flight},
      {"open_for_ms", b.open_for_ms},
      {"retry_in_ms", b.retry_in_ms},
      {"refused", b.refused},
      {"retries", b.retries},
      {"transitions", b.transitions},
      {"last_transition", last}};
  return out;
}

// Collects every dependency's status (a timeout counts as down) and answers in one of two shapes.
// /readyz is public, so it says only whether the node is ready and which dependency is up: error
// text, addresses and breaker timings would tell an attacker where to aim. GET /v1/status is the
// authenticated operator's view with the detail, one key per section (dependencies today;
// breakers, pools, queues and membership join it).
enum class status_view { public_readiness, operator_detail };

struct readiness_collector {
  gateway_context* ctx;
  http_request req;
  status_view view = status_view::public_readiness;
  std::vector<dependency_status> statuses;
  std::size_t expected = 0;

  void add(dependency_status s) {
    statuses.push_back(std::move(s));
    if (statuses.size() < expected)
      return;
    bool ready = !ctx->draining;
    for (const auto& d : statuses)
      if (d.required && !d.up)
        ready = false;
    const char* status = ctx->draining ? "draining" : ready ? "ready" : "not_ready";
    json deps = json::array();
    for (const auto& d : statuses) {
      if (view == status_view::public_readiness)
        deps.push_back({{"name", d.name}, {"up", d.up}});
      else
        deps.push_back(operator_view(d));
    }
    if (view == status_view::public_readiness) {
      json body{{"status", status}, {"ready", ready}, {"dependencies", deps}};
      auto r = json_response(ready ? 200 : 503, body);
      if (!ready)
        r.headers.emplace_back("Retry-After", "5");
      ctx->reply(req, std::move(r));
      return;
    }
    // The operator asked about the node, which answered: 200 whatever the node's state.
    json body{{"node", {{"status", status}, {"ready", ready}, {"draining", ctx->draining}}},
              {"dependencies", deps}};
    ctx->reply(req, json_response(200, body));
  }
};

void collect_status(gateway_context& ctx, const http_request& req, status_view view) {
  auto collector = std::make_shared<readiness_collector>();
  collector->ctx = &ctx;
  collector->req = req;
  collector->view = view;
  auto ask = [&](const auto& handle, const char* name, bool required) {
    ++collector->expected;
    if (!handle) {
      dependency_status s;
      s.name = name;
      s.required = required;
      s.state = "absent";
      s.detail = "not configured";
      collector->statuses.push_back(std::move(s));
      return;
    }
    ctx.self->request(handle, std::chrono::seconds(2), status_atom::value)
      .then([collector](dependency_status& s) { collector->add(std::move(s)); },
            [collector, name, required](caf::error& err) {
              dependency_status s;
              s.name = name;
              s.required = required;
              s.state = "unresponsive";
              s.detail = "no status answer: " + caf::to_string(err);
              collector->add(std::move(s));
            });
  };
  ask(ctx.settings.postgres, "postgres", true);
  ask(ctx.settings.redis, "redis", false);
  ask(ctx.settings.instanote, "instanote", false);
  // absent handles were counted synchronously; finish if every answer is already in
  if (collector->statuses.size() == collector->expected) {
    auto last = collector->statuses.back();
    collector->statuses.pop_back();
    collector->add(std::move(last));
  }
}

void dispatch(gateway_state& st, http_request& req) {
  auto& ctx = st.ctx;
  auto result = st.table.match(req.method, req.path);
  // Requests refused before authentication still count against the peer's rate.
  if (!std::holds_alternative<route_match>(result) && !within_peer_rate(ctx, req))
    return;
  if (std::holds_alternative<route_not_found>(result)) {
    ctx.reply(req, problem(404, "not-found", "Not Found", "no resource at this path"));
    return;
  }
  if (auto* bad = std::get_if<route_bad_path>(&result)) {
    ctx.reply(req, problem(400, "bad-path", "Bad Request", bad->reason));
    return;
  }
  if (auto* bad = std::get_if<route_bad_method>(&result)) {
    auto r = problem(405, "method-not-allowed", "Method Not Allowed",
                     req.method + " is not allowed here; allowed: " + bad->allow);
    r.headers.emplace_back("Allow", bad->allow);
    ctx.reply(req, std::move(r));
    return;
  }
  auto& match = std::get<route_match>(result);
  auto id = static_cast<route>(match.route);
  if (id == route::healthz) {
    ctx.reply(req, json_response(200, json{{"status", "alive"}}));
    return;
  }
  if (id == route::readyz) {
    collect_status(ctx, req, status_view::public_readiness);
    return;
  }
  if (ctx.draining) {
    auto r = problem(503, "draining", "Service Unavailable", "this node is shutting down");
    r.headers.emplace_back("Retry-After", "5");
    ctx.reply(req, std::move(r));
    return;
  }
  if (is_write(req)) {
    for (const auto& h : req.headers) {
      if (h.first != idempotency_header) continue;
      std::string why;
      if (!parse_idempotency_key(h.second, why)) {
        ctx.reply(req, problem(400, "invalid-idempotency-key", "Bad Request", why));
        return;
      }
    }
  }
  admit(ctx, req, spec_of(match.route).permission,
        [&ctx, id, match](const http_request& admitted_req, const principal& who) {
          if (auto refused = media_type_problem(admitted_req))
            return ctx.reply(admitted_req, std::move(*refused));
          switch (id) {
            case route::node_status:
              return collect_status(ctx, admitted_req, status_view::operator_detail);
            case route::users_create:
            case route::user_get:
            case route::user_update:
            case route::audit_list:
              return handle_users(ctx, id, admitted_req, match, who);
            case route::reports_create:
            case route::reports_list:
            case route::report_get:
            case route::report_update:
            case route::patterns_search:
              return handle_reports(ctx, id, admitted_req, match, who);
            case route::speaker_jobs:
              return handle_jobs(ctx, admitted_req, match, who);
            case route::drafts_correct:
              return handle_drafts(ctx, admitted_req, who);
            default:
              return handle_speakers(ctx, id, admitted_req, match, who);
          }
        });
}

caf::behavior gateway_actor(caf::stateful_actor<gateway_state>* self, gateway_settings settings) {
  auto& st = self->state;
  st.ctx.self = self;
  st.ctx.settings = std::move(settings);
  st.ctx.limiter = rate_limiter{st.ctx.settings.rate_limit};
  st.ctx.standings = user_standing_cache{st.ctx.settings.user_cache_ttl};
  for (const auto& r : routes)
    st.table.add(r.method, r.pattern, static_cast<int>(r.id));
  return {
    [self](http_atom, http_request& req) {
      try {
        dispatch(self->state, req);
      } catch (const std::exception& e) {
        // A handler bug must not take the gateway (and every in-flight request) down with it.
        self->state.log->error("handler failed for {} {}: {}", req.method,
                               sbm::log::escape(req.path), e.what());
        self->state.ctx.reply(req, problem(500, "internal", "Internal Server Error",
                                           "an internal error occurred"));
      }
    },
    [self](drain_atom) {
      self->state.ctx.draining = true;
      return true;
    },
  };
}

}  // namespace

request_context gateway_context::work_context(const http_request& req, const principal& who) const {
  request_context out;
  // A little before the gateway's own timer: work dropped at its deadline answers "nothing was
  // saved" in time, instead of leaving the client with an unknown outcome.
  out.until = deadline::after(self->clock().now(), settings.request_timeout * 9 / 10);
  out.principal = who.describe();
  out.scope = who.scope;
  if (!is_write(req))
    return out;
  for (const auto& h : req.headers) {
    if (h.first != idempotency_header) continue;
    std::string why;
    if (auto key = parse_idempotency_key(h.second, why)) {
      out.idempotency_key = std::move(*key);
      out.request_digest = req.digest;
    }
    break;
  }
  return out;
}

bool read_query(const gateway_context& ctx, const http_request& req,
                std::vector<std::pair<std::string, std::string>>& out) {
  if (parse_query(req.query, out))
    return true;
  ctx.reply(req, problem(400, "bad-query", "Bad Request",
                         "the query string contains an invalid percent-encoding"));
  return false;
}

caf::actor spawn_gateway(caf::actor_system& sys, gateway_settings settings) {
  return sys.spawn(gateway_actor, std::move(settings));
}

}  // namespace sbm::gateway
