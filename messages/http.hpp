#pragma once
// What the HTTP server hands the gateway actor and what comes back. The RESTinio handle stays in the
// server; only this data travels, so routing logic never touches socket objects.
#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sbm {

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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_request& x) {
  return f(caf::meta::type_name("http_request"), x.id, x.method, x.path, x.query, x.headers,
           x.body, x.peer, x.digest);
}

struct http_response {
  std::uint16_t status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_response& x) {
  return f(caf::meta::type_name("http_response"), x.status, x.content_type, x.headers, x.body);
}

}  // namespace sbm
