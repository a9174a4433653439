#pragma once
// The one HTTP request the client commands make: a GET with a deadline, over a plain socket or TLS
// (OpenSSL, the certificate checked against the system's CAs or a given CA file, and the host name
// or IP against it). The answer is read whole, up to a cap.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sbm::cli {

struct http_url {
  bool tls = false;
  std::string host;       // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 0;
  std::string base_path;  // "" or "/prefix" (a node behind a reverse proxy), never a trailing '/'
};

// http://HOST[:PORT][/PREFIX] or https://...; otherwise why not.
std::variant<http_url, std::string> parse_url(std::string_view text);

struct http_answer {
  int status = 0;
  std::string content_type;
  std::string body;
};

struct http_get_options {
  std::string method = "GET";  // or a POST without a body (an operator's action)
  std::chrono::milliseconds timeout{10'000};   // for everything: resolve, connect, handshake, answer
  std::string ca_file;                         // empty: the system's CAs
  std::size_t max_body = 16 * 1024 * 1024;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The answer, or why there is none (unreachable, timed out, certificate refused, not HTTP).
std::variant<http_answer, std::string> http_get(const http_url& url, const std::string& path,
                                                const http_get_options& options);

}  // namespace sbm::cli
