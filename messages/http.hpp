#pragma once
// What the HTTP server hands the gateway actor and what comes back. The RESTinio handle stays in the
// server; only this data travels, so routing logic never touches socket objects.
#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbm {

// What the front door (on an HTTP thread, gateway/front_door) found of the bearer token, so the
// actor a request reaches checks no signature: absent, refused (with the reason for the 401), or
// genuine with the claims the signature covers.
enum class token_state : std::uint8_t { absent, refused, genuine };

struct token_verdict {
  token_state state = token_state::absent;
  std::string refusal;  // why a refused token was refused (never the token itself)
  std::string subject, role, service_id;
  std::vector<std::string> permissions;
  bool has_client_ids = false;
  std::vector<std::string> client_ids;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_verdict& x) {
  return f(caf::meta::type_name("token_verdict"), x.state, x.refusal, x.subject, x.role,
           x.service_id, x.permissions, x.has_client_ids, x.client_ids);
}

struct http_request {
  std::uint64_t id = 0;        // the server's key to complete the response
  std::string method;          // "GET", "POST", ...
  std::string path;            // decoded path without query
  std::string query;           // raw query string (without '?')
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string peer;            // remote address, for audit and rate limits
  // Hex SHA-256 of method, path, query and body, computed on the HTTP thread when the request
  // carries an Idempotency-Key (what a retry under the same key must match).
  std::string digest;
  // Set by the front door: the client's sane X-Request-Id or one made for it (in the answer, in
  // every problem body, in log lines and in the request_context of the work the request starts),
  // the matched route with its decoded path parameters, and the token's verdict.
  std::string request_id;
  int route = -1;
  std::vector<std::string> params;
  token_verdict token;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_request& x) {
  return f(caf::meta::type_name("http_request"), x.id, x.method, x.path, x.query, x.headers,
           x.body, x.peer, x.digest, x.request_id, x.route, x.params, x.token);
}

// What an answer's body is: one of the two types the API answers in, or another (the console's
// files, the metrics exposition) spelt out in `other_type`. Not a string: "application/json" is one
// byte past the small-string limit, so a string cost an allocation per answer on the worker and a
// free on the HTTP thread.
enum class media : std::uint8_t { json, problem_json, other };

struct http_response {
  std::uint16_t status = 200;
  media type = media::json;
  std::string other_type;  // the Content-Type when type is media::other
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string_view content_type() const {
    switch (type) {
      case media::json: return "application/json";
      case media::problem_json: return "application/problem+json";
      case media::other: break;
    }
    return other_type;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_response& x) {
  return f(caf::meta::type_name("http_response"), x.status, x.type, x.other_type, x.headers,
           x.body);
}

}  // namespace sbm
