#include "cli/http_get.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>

#include "runtime/version/version.hpp"

namespace sbm::cli {

namespace {

using steady = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string openssl_error() {
  const auto code = ERR_get_error();
  if (code == 0)
    return "TLS failure";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

struct fd_closer {
  int fd = -1;
  ~fd_closer() {
    if (fd >= 0)
      ::close(fd);
  }
};

struct ssl_free {
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

// A non-blocking socket and, for https, its TLS session; every wait is a poll bounded by the
// deadline, so a node that accepts and then says nothing cannot hold the command.
class connection {
 public:
  connection(steady::time_point deadline) : deadline_(deadline) {}

  std::optional<std::string> open(const http_url& url, const std::string& ca_file) {
    if (auto err = connect_tcp(url))
      return err;
    if (url.tls)
      return handshake(url, ca_file);
    return std::nullopt;
  }

  std::optional<std::string> send_all(std::string_view data) {
    while (!data.empty()) {
      long n = 0;
      if (ssl_) {
        n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
        if (n <= 0) {
          if (auto err = wait_ssl(SSL_get_error(ssl_.get(), static_cast<int>(n)), "sending the request"))
            return err;
          continue;
        }
      } else {
        n = ::send(sock_.fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return std::string{"sending the request: "} + std::strerror(errno);
          if (auto err = wait(POLLOUT, "sending the request"))
            return err;
          continue;
        }
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return std::nullopt;
  }

  // Appends what arrives to `out`; false at the end of the stream.
  std::variant<bool, std::string> receive(std::string& out) {
    char buffer[16384];
    for (;;) {
      if (ssl_) {
        const int n = SSL_read(ssl_.get(), buffer, sizeof buffer);
        if (n > 0) {
          out.append(buffer, static_cast<std::size_t>(n));
          return true;
        }
        const int code = SSL_get_error(ssl_.get(), n);
        if (code == SSL_ERROR_ZERO_RETURN)
          return false;
        // A peer that closes without close_notify ends the stream too; the length decides
        // whether the answer is whole.
        if (code == SSL_ERROR_SYSCALL || (code == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
                                                                      SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
          ERR_clear_error();
          return false;
        }
        if (auto err = wait_ssl(code, "reading the answer"))
          return *err;
        continue;
      }
      const auto n = ::recv(sock_.fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        out.append(buffer, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0)
        return false;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return std::string{"reading the answer: "} + std::strerror(errno);
      if (auto err = wait(POLLIN, "reading the answer"))
        return *err;
    }
  }

 private:
  std::optional<std::string> wait(short events, const char* doing) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - steady::now());
      if (left.count() <= 0)
        return std::string{"timed out "} + doing;
      pollfd p{sock_.fd, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n > 0)
        return std::nullopt;
      if (n < 0 && errno != EINTR)
        return std::string{doing} + ": " + std::strerror(errno);
    }
  }

  std::optional<std::string> wait_ssl(int code, const char* doing) {
    if (code == SSL_ERROR_WANT_READ)
      return wait(POLLIN, doing);
    if (code == SSL_ERROR_WANT_WRITE)
      return wait(POLLOUT, doing);
    return std::string{doing} + ": " + openssl_error();
  }

  std::optional<std::string> connect_tcp(const http_url& url) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const auto port = std::to_string(url.port);
    if (const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0)
      return "cannot resolve " + url.host + ": " + ::gai_strerror(rc);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses{found, &::freeaddrinfo};
    std::string last = "no address";
    for (auto* a = found; a; a = a->ai_next) {
      fd_closer s{::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol)};
      if (s.fd < 0) {
        last = std::strerror(errno);
        continue;
      }
      std::swap(sock_.fd, s.fd);
      if (::connect(sock_.fd, a->ai_addr, a->ai_addrlen) == 0)
        return std::nullopt;
      if (errno == EINPROGRESS) {
        if (auto err = wait(POLLOUT, "connecting")) {
          last = *err;
        } else {
          int error = 0;
          socklen_t len = sizeof error;
          ::getsockopt(sock_.fd, SOL_SOCKET, SO_ERROR, &error, &len);
          if (error == 0)
            return std::nullopt;
          last = std::strerror(error);
        }
      } else {
        last = std::strerror(errno);
      }
      std::swap(sock_.fd, s.fd);  // the failed socket is closed with `s`
    }
    return "cannot connect to " + url.host + " port " + port + ": " + last;
  }

  std::optional<std::string> handshake(const http_url& url, const std::string& ca_file) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_)
      return openssl_error();
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    const int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_.get())
                                       : SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr);
    if (loaded != 1)
      return "cannot load " + (ca_file.empty() ? std::string{"the system's CA certificates"} : "CA file " + ca_file) +
             ": " + openssl_error();
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), sock_.fd) != 1)
      return openssl_error();
    in6_addr ip{};
    const bool is_ip = ::inet_pton(AF_INET, url.host.c_str(), &ip) == 1 ||
                       ::inet_pton(AF_INET6, url.host.c_str(), &ip) == 1;
    auto* param = SSL_get0_param(ssl_.get());
    const int named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                            : SSL_set_tlsext_host_name(ssl_.get(), url.host.c_str()) == 1 &&
                                  SSL_set1_host(ssl_.get(), url.host.c_str()) == 1;
    if (named != 1)
      return openssl_error();
    for (;;) {
      const int rc = SSL_connect(ssl_.get());
      if (rc == 1)
        return std::nullopt;
      const int code = SSL_get_error(ssl_.get(), rc);
      if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
        if (auto err = wait_ssl(code, "in the TLS handshake"))
          return err;
        continue;
      }
      const long verdict = SSL_get_verify_result(ssl_.get());
      if (verdict != X509_V_OK)
        return std::string{"the node's certificate is not trusted: "} + X509_verify_cert_error_string(verdict) +
               (ca_file.empty() ? " (give its CA with --cacert FILE)" : "");
      return "TLS handshake with " + url.host + " failed: " + openssl_error();
    }
  }

  steady::time_point deadline_;
  fd_closer sock_;
  std::unique_ptr<SSL_CTX, ssl_free> ctx_;
  std::unique_ptr<SSL, ssl_free> ssl_;  // declared last: freed before its context and socket
};

std::optional<std::size_t> parse_size(std::string_view text, int base) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The head of an answer: its status, headers, and how its body is framed.
struct head {
  int status = 0;
  std::string content_type;
  std::optional<std::size_t> length;
  bool chunked = false;
};

std::variant<head, std::string> parse_head(std::string_view text) {
  head h;
  auto line_end = text.find("\r\n");
  const auto status_line = text.substr(0, line_end);
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12 || status_line[8] != ' ')
    return std::string{"the answer is not HTTP"};
  const auto code = parse_size(status_line.substr(9, 3), 10);
  if (!code || *code < 100 || *code > 599)
    return std::string{"the answer has no valid status"};
  h.status = static_cast<int>(*code);
  while (line_end != std::string_view::npos) {
    text.remove_prefix(line_end + 2);
    line_end = text.find("\r\n");
    const auto line = text.substr(0, line_end);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    const auto name = lower(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    if (name == "content-type")
      h.content_type = std::string(value);
    else if (name == "content-length") {
      h.length = parse_size(value, 10);
      if (!h.length)
        return std::string{"the answer has an invalid Content-Length"};
    } else if (name == "transfer-encoding")
      h.chunked = lower(value).find("chunked") != std::string::npos;
  }
  return h;
}

// A chunked body, once whole; nullopt while more is needed.
std::optional<std::variant<std::string, std::string>> dechunk(std::string_view data) {
  std::string body;
  for (;;) {
    const auto eol = data.find("\r\n");
    if (eol == std::string_view::npos)
      return std::nullopt;
    auto size_text = data.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));
    const auto size = parse_size(trim(size_text), 16);
    if (!size)
      return std::variant<std::string, std::string>{std::in_place_index<1>, "the answer's chunks are malformed"};
    data.remove_prefix(eol + 2);
    if (*size == 0)
      return std::variant<std::string, std::string>{std::in_place_index<0>, std::move(body)};
    if (data.size() < *size + 2)
      return std::nullopt;
    body.append(data.substr(0, *size));
    data.remove_prefix(*size + 2);
  }
}

}  // namespace

std::variant<http_url, std::string> parse_url(std::string_view text) {
  http_url url;
  std::string_view rest;
  if (text.substr(0, 7) == "http://") {
    rest = text.substr(7);
    url.port = 80;
  } else if (text.substr(0, 8) == "https://") {
    rest = text.substr(8);
    url.tls = true;
    url.port = 443;
  } else {
    return std::string{"the URL must start with http:// or https://"};
  }
  const auto slash = rest.find_first_of("/?#");
  auto authority = rest.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (!path.empty() && path.front() != '/')
    return std::string{"the URL may not have a query or a fragment"};
  if (path.find_first_of("?# ") != std::string_view::npos)
    return std::string{"the URL may not have a query or a fragment"};
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  url.base_path = std::string(path);
  if (authority.find('@') != std::string_view::npos)
    return std::string{"the URL may not carry credentials (give the token with --token-file or SBM_TOKEN)"};
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::string{"the URL's IPv6 address has no closing ']'"};
    url.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      return std::string{"the URL's host is malformed"};
    if (!after.empty())
      port_text = after.substr(1);
  } else {
    const auto colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos)
      port_text = authority.substr(colon + 1);
  }
  if (url.host.empty())
    return std::string{"the URL has no host"};
  if (!port_text.empty() || authority.back() == ':') {
    const auto port = parse_size(port_text, 10);
    if (!port || *port < 1 || *port > 65535)
      return std::string{"the URL's port must be 1..65535"};
    url.port = static_cast<std::uint16_t>(*port);
  }
  return url;
}

std::variant<http_answer, std::string> http_get(const http_url& url, const std::string& path,
                                                const http_get_options& options) {
  const auto deadline = steady::now() + options.timeout;
  connection conn{deadline};
  if (auto err = conn.open(url, options.ca_file))
    return *err;
  const bool default_port = url.port == (url.tls ? 443 : 80);
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + url.host + "]" : url.host;
  if (!default_port)
    host += ":" + std::to_string(url.port);
  std::string request = options.method + " " + url.base_path + path + " HTTP/1.1\r\nHost: " + host +
                        "\r\nUser-Agent: sbm/" + std::string(version()) +
                        "\r\nAccept: application/json\r\nConnection: close\r\n";
  for (const auto& [name, value] : options.headers)
    request += name + ": " + value + "\r\n";
  if (options.method != "GET")
    request += "Content-Length: 0\r\n";
  request += "\r\n";
  if (auto err = conn.send_all(request))
    return *err;

  std::string data;
  std::optional<head> h;
  std::size_t body_start = 0;
  for (;;) {
    auto more = conn.receive(data);
    if (auto* err = std::get_if<std::string>(&more))
      return *err;
    const bool open = std::get<bool>(more);
    if (!h) {
      const auto end = data.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (data.size() > 64 * 1024)
          return std::string{"the answer's headers are too large"};
        if (!open)
          return std::string{"the node closed the connection before answering"};
        continue;
      }
      auto parsed = parse_head(std::string_view(data).substr(0, end));
      if (auto* err = std::get_if<std::string>(&parsed))
        return *err;
      h = std::get<head>(parsed);
      body_start = end + 4;
    }
    const auto body = std::string_view(data).substr(body_start);
    if (body.size() > options.max_body + 64 * 1024)
      return "the answer is larger than " + std::to_string(options.max_body) + " bytes";
    if (h->chunked) {
      if (auto whole = dechunk(body)) {
        if (auto* err = std::get_if<1>(&*whole))
          return *err;
        return http_answer{h->status, h->content_type, std::get<0>(std::move(*whole))};
      }
    } else if (h->length) {
      if (*h->length > options.max_body)
        return "the answer is larger than " + std::to_string(options.max_body) + " bytes";
      if (body.size() >= *h->length)
        return http_answer{h->status, h->content_type, std::string(body.substr(0, *h->length))};
    } else if (!open) {
      return http_answer{h->status, h->content_type, std::string(body)};
    }
    if (!open)
      return std::string{"the node closed the connection in the middle of its answer"};
  }
}

}  // namespace sbm::cli
