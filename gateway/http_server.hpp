#pragma once
// The RESTinio server: the only translation unit family that includes RESTinio (it is heavy to
// compile). Its threads never wait on actors: each request is handed over and answered later.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "gateway/connection_limits.hpp"
#include "gateway/responder.hpp"
#include "runtime/metrics/request_counters.hpp"

namespace sbm::gateway {

// A minimal answer (the gateway gives json_io's, with the same words as its own errors).
http_response default_unanswered(bool write, unanswered_cause cause);

struct http_server_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::size_t threads = 1;
  std::size_t body_limit = 1 << 20;      // larger bodies get 413
  std::size_t max_connections = 1024;     // all addresses together
  connection_limit_settings per_address;  // each address alone (trusted proxies exempt)
  // Peers whose X-Forwarded-For names the client (exact addresses); anyone else's is ignored.
  std::set<std::string, std::less<>> trusted_proxies;
  // Bytes of request bodies held at once, node-wide (from the headers of a request until its
  // answer); past it a new body gets 503 + Retry-After before any of it is read.
  std::size_t body_budget = std::size_t{256} << 20;
  // Optional, called on an HTTP thread once a request's headers are in: whether the bearer token
  // is genuine. The body of a request whose token is not is read past and never stored (the
  // gateway still answers and audits the 401).
  std::function<bool(std::string_view token)> token_ok;
  // Optional, called on an HTTP thread after the requests a pass of its loop handed to the sink
  // (once per pass, not per request): a sink that holds requests to send them together sends
  // them here. Without it the sink must not hold any.
  std::function<void()> flush;
  std::size_t max_header_bytes = 8192;   // per header value and for the URL
  std::size_t max_header_count = 100;
  // A request not answered this long after it was read is answered by the server itself with
  // unanswered(write, unanswered_cause::timed_out), whoever held it; the gateway keeps no timer
  // of its own. RESTinio's handle_timeout (longer) only closes connections nobody answered.
  std::chrono::milliseconds answer_timeout{10000};
  std::function<http_response(bool write, unanswered_cause cause)> unanswered = default_unanswered;
  // Every answer is counted here by route, method and status, with its latency from the moment
  // the request was read (null: nothing is counted).
  std::shared_ptr<metrics::request_counters> counters;
  std::chrono::milliseconds handle_timeout{30000};   // no answer by then: connection closed
  std::chrono::milliseconds read_timeout{10000};     // slow clients are cut off (TLS: handshake too)
  // HTTPS only, when both are set: the certificate chain file (PEM) and the private key itself
  // (PEM text: a secret, passed by content so it can come from the environment; never logged).
  std::string tls_cert_file;
  std::string tls_key_pem;

  bool tls() const { return !tls_cert_file.empty() && !tls_key_pem.empty(); }
};

class http_server final : public responder {
 public:
  using request_sink = std::function<void(http_request&&)>;

  http_server(http_server_settings settings, request_sink sink);
  ~http_server() override;

  // Binds and starts the server threads; throws std::runtime_error when the port cannot be bound
  // or the TLS certificate and key cannot be loaded or do not match.
  void start();
  // Stops accepting, answers nothing more; safe to call twice.
  void stop();
  // The configured port.
  std::uint16_t port() const;
  // Requests handed over but not answered yet, for draining on shutdown.
  std::size_t in_flight() const;
  // Returns as soon as no request is in flight (true), or at the deadline (false).
  bool wait_idle(std::chrono::steady_clock::time_point deadline) const;

  void respond(std::uint64_t request_id, http_response response) override;
  void hand_over(std::uint64_t request_id, std::uint64_t owner, int route) override;
  void respond_routed(std::uint64_t request_id, int route, http_response response) override;
  void fail_owned(std::uint64_t owner) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sbm::gateway
