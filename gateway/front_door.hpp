#pragma once
// The gateway's front door: the part of every request that needs no actor, run on the HTTP thread
// that read it, so no single actor does per-request CPU work for the whole node. In order (the
// server has already given the request its id, gateway/request_id.hpp): the route (404, 405 and undecodable paths answered here); /healthz; a malformed
// Idempotency-Key (400); the QA console's static files (no token: its API calls carry one); the bearer token, verified once per token (token_cache); the client's
// request rate (429), keyed by the principal the token names or, without a genuine token, by the
// peer. What is left (the user's registered standing, permissions, 401/403 with their audit
// records, the route itself) is done by a gateway lane (gateway_actor.cpp), which reads the
// verdict from the request.
// Thread-safe: the HTTP threads share one front door.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "gateway/rate_limiter.hpp"
#include "gateway/router.hpp"
#include "gateway/static_files.hpp"
#include "gateway/token_cache.hpp"
#include "messages/http.hpp"

namespace sbm::auth {
class jwt_verifier;
}

namespace sbm::gateway {

struct front_door_settings {
  std::shared_ptr<const auth::jwt_verifier> verifier;  // null: every token is refused
  rate_limit_settings rate_limit;                      // off by default
  std::size_t token_cache_capacity = 10000;
  std::shared_ptr<const static_files> console;  // null: /console/ answers 404 saying so
};

class front_door {
 public:
  explicit front_door(front_door_settings settings);

  // Either the answer (the request ends here) or nullopt with the request's route, path
  // parameters and token verdict filled in, for a lane.
  std::optional<http_response> admit(http_request& req);

  // Whether a bearer token is genuine: the early look at a request's headers uses it to decide
  // whether its body is worth holding.
  bool token_genuine(std::string_view token);

  std::size_t cached_tokens() const { return tokens_.size(); }

 private:
  token_verdict verify(std::string_view token);
  std::optional<http_response> over_rate(std::string_view client);
  // The rate-limit key of a request without a genuine token; built only where one is counted so,
  // not for every request.
  static std::string peer_key(const http_request& req) { return "peer:" + req.peer; }
  std::optional<http_response> serve_console(const http_request& req);

  front_door_settings settings_;
  router table_;
  token_cache tokens_;
  std::mutex limiter_mutex_;
  rate_limiter limiter_;
};

}  // namespace sbm::gateway
