#include "gateway/front_door.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <variant>

#include "gateway/auth/jwt.hpp"
#include "gateway/idempotency_key.hpp"
#include "gateway/json_io.hpp"
#include "gateway/openapi.hpp"
#include "gateway/readers.hpp"
#include "gateway/route_table.hpp"

namespace sbm::gateway {

namespace {

const std::string* header(const http_request& req, std::string_view name) {
  for (const auto& h : req.headers)
    if (h.first == name)
      return &h.second;
  return nullptr;
}

bool is_write(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

}  // namespace

front_door::front_door(front_door_settings settings)
  : settings_(std::move(settings)),
    table_(make_router()),
    tokens_(settings_.token_cache_capacity),
    limiter_(settings_.rate_limit) {}

token_verdict front_door::verify(std::string_view token) {
  // Not std::time: glibc reads it from the kernel's coarse clock, which at every second boundary
  // lags the real time by up to a tick (measured here: 0.9% of reads a second behind), so with
  // auth.leeway 0 a token issued that second (nbf = now) read "not valid yet".
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  const auto now = static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
  if (auto cached = tokens_.find(token, now))
    return std::move(*cached);
  token_verdict out;
  out.state = token_state::refused;
  if (!settings_.verifier) {
    out.refusal = "no token keys are configured on this node";
    return out;
  }
  auto verdict = settings_.verifier->verify(token, now);
  if (auto* err = std::get_if<auth::jwt_error>(&verdict)) {
    out.refusal = std::string{auth::describe(*err)};
    return out;
  }
  auto& claims = std::get<auth::jwt_claims>(verdict);
  out.state = token_state::genuine;
  out.subject = std::move(claims.subject);
  out.role = std::move(claims.role);
  out.service_id = std::move(claims.service_id);
  out.permissions = std::move(claims.permissions);
  out.has_client_ids = claims.has_client_ids;
  out.client_ids = std::move(claims.client_ids);
  tokens_.remember(token, out, claims.expires_at);
  return out;
}

bool front_door::token_genuine(std::string_view token) {
  return verify(token).state == token_state::genuine;
}

std::optional<http_response> front_door::over_rate(std::string_view client) {
  if (!limiter_.enabled())
    return std::nullopt;
  rate_decision decision;
  {
    std::lock_guard<std::mutex> guard{limiter_mutex_};
    decision = limiter_.take(client, std::chrono::steady_clock::now());
  }
  if (decision.allowed)
    return std::nullopt;
  auto seconds = std::to_string(decision.retry_after_seconds());
  auto r = problem(429, "rate-limited", "Too Many Requests",
                   "too many requests from this client; retry after " + seconds + " s");
  r.headers.emplace_back("Retry-After", seconds);
  return r;
}

// The page sends its API calls to this node only and may not be framed; styles set by script
// count as inline.
constexpr const char* console_policy =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

std::optional<http_response> front_door::serve_console(const http_request& req) {
  const std::string_view path{req.path};
  if (path.compare(0, console_mount.size(), console_mount) != 0 ||
      (path.size() > console_mount.size() && path[console_mount.size()] != '/'))
    return std::nullopt;
  if (auto refused = over_rate(peer_key(req)))
    return refused;
  if (!settings_.console)
    return problem(404, "not-found", "Not Found",
                   "the QA console is not built on this node (scripts/build; gateway.console-dir)");
  const auto found = settings_.console->lookup(req.method, path);
  if (found.kind == static_lookup::bad_method) {
    auto r = problem(405, "method-not-allowed", "Method Not Allowed",
                     req.method + " is not allowed here; allowed: GET, HEAD");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (found.kind != static_lookup::found)
    return problem(404, "not-found", "Not Found", "no file of the QA console at this path");
  http_response r;
  r.type = media::other;
  r.other_type = found.file->content_type;
  r.body = found.file->body;
  r.headers.emplace_back("Cache-Control", found.file->cache_control);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (found.file->html) {
    r.headers.emplace_back("Content-Security-Policy", console_policy);
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  return r;
}

std::optional<http_response> front_door::admit(http_request& req) {
  if (auto console = serve_console(req))
    return console;
  auto result = table_.match(req.method, req.path);
  if (!std::holds_alternative<route_match>(result)) {
    // Requests refused before authentication still count against the peer's rate.
    if (auto refused = over_rate(peer_key(req)))
      return refused;
    if (std::holds_alternative<route_not_found>(result))
      return problem(404, "not-found", "Not Found", "no resource at this path");
    if (auto* bad = std::get_if<route_bad_path>(&result))
      return problem(400, "bad-path", "Bad Request", bad->reason);
    auto& bad = std::get<route_bad_method>(result);
    auto r = problem(405, "method-not-allowed", "Method Not Allowed",
                     req.method + " is not allowed here; allowed: " + bad.allow);
    r.headers.emplace_back("Allow", bad.allow);
    return r;
  }
  auto& match = std::get<route_match>(result);
  req.route = match.route;
  req.params = std::move(match.params);
  const auto id = static_cast<route>(req.route);
  if (id == route::healthz || id == route::openapi) {
    // Answered here, so their query is checked here (the lanes check every other route's).
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!req.query.empty())
      if (auto refused = query_reader::refusal(req.query, {}, pairs))
        return refused;
  }
  if (id == route::healthz)
    return json_response(200, nlohmann::json{{"status", "alive"}});
  if (id == route::openapi) {
    // Public and about 200 KB: counted against the peer's rate like any unauthenticated request.
    if (auto refused = over_rate(peer_key(req)))
      return refused;
    http_response r;
    r.body = std::string{openapi_document()};
    return r;
  }
  if (id == route::readyz)
    return std::nullopt;  // a lane asks the dependencies
  if (is_write(req.method)) {
    if (const auto* key = header(req, idempotency_header)) {
      std::string why;
      if (!parse_idempotency_key(*key, why))
        return problem(400, "invalid-idempotency-key", "Bad Request", why);
    }
  }
  const auto* authorization = header(req, "authorization");
  if (authorization && authorization->compare(0, 7, "Bearer ") == 0)
    req.token = verify(std::string_view{*authorization}.substr(7));
  if (req.token.state != token_state::genuine)
    return over_rate(peer_key(req));  // the lane answers 401 and audits it
  if (!limiter_.enabled())
    return std::nullopt;
  // The principal's key, built in a buffer each HTTP thread keeps: a new string per request was
  // an allocation and a free on the HTTP thread, the node's limit under load.
  thread_local std::string key;
  const bool user = req.token.service_id.empty();
  key.assign(user ? "user:" : "service:");
  key += user ? req.token.subject : req.token.service_id;
  return over_rate(key);
}

}  // namespace sbm::gateway
