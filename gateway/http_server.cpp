#include "gateway/http_server.hpp"

#include <restinio/all.hpp>
#include <restinio/tls.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

namespace {

struct server_traits : restinio::default_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};

struct tls_server_traits : restinio::default_tls_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};

// RESTinio starts its read timeout only once the TLS handshake is done, so a client that opens a
// connection and never finishes the handshake would hold a connection slot forever. This overload
// of RESTinio's customisation point (found by argument-dependent lookup through the traits type,
// and preferred as more specialised) adds a deadline: past it the socket is shut down, the pending
// handshake read fails and RESTinio closes the connection as for any failed handshake.
// Process-wide: set by http_server::start (one server per process).
std::atomic<std::int64_t> tls_handshake_timeout_ms{10000};

struct handshake_deadline {
  explicit handshake_deadline(const restinio::asio_ns::any_io_executor& executor) : timer(executor) {}
  std::mutex mutex;
  bool finished = false;  // once set, the socket belongs to RESTinio alone again
  restinio::asio_ns::steady_timer timer;
};

template <typename Start_Read_CB, typename Failed_CB>
void prepare_connection_and_start_read(restinio::tls_socket_t& socket,
                                       restinio::impl::connection_t<tls_server_traits>& con,
                                       Start_Read_CB start_read_cb, Failed_CB failed_cb) {
  auto deadline = std::make_shared<handshake_deadline>(socket.get_executor());
  const auto fd = socket.lowest_layer().native_handle();
  deadline->timer.expires_after(std::chrono::milliseconds(tls_handshake_timeout_ms.load()));
  deadline->timer.async_wait([deadline, fd](const restinio::asio_ns::error_code& ec) {
    if (ec)
      return;
    // Under the lock the handshake has not completed, so RESTinio has not closed (and the OS
    // cannot have reused) the descriptor; shutdown() wakes the pending read on any thread.
    std::lock_guard<std::mutex> guard{deadline->mutex};
    if (!deadline->finished)
      ::shutdown(fd, SHUT_RDWR);
  });
  socket.async_handshake(
    restinio::asio_ns::ssl::stream_base::server,
    [start_read_cb = std::move(start_read_cb), failed_cb = std::move(failed_cb),
     con = con.shared_from_this(), deadline](const restinio::asio_ns::error_code& ec) {
      {
        std::lock_guard<std::mutex> guard{deadline->mutex};
        deadline->finished = true;
      }
      deadline->timer.cancel();
      if (!ec)
        start_read_cb();
      else
        failed_cb(ec);
    });
}

restinio::asio_ns::ssl::context make_tls_context(const http_server_settings& s) {
  namespace ssl = restinio::asio_ns::ssl;
  ssl::context context{ssl::context::tls_server};
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
  try {
    context.use_certificate_chain_file(s.tls_cert_file);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load the TLS certificate chain from '" + s.tls_cert_file +
                             "': " + e.what());
  }
  try {
    context.use_private_key(restinio::asio_ns::buffer(s.tls_key_pem), ssl::context::pem);
  } catch (const std::exception& e) {
    // OpenSSL's reason names the failure, never the key's bytes.
    throw std::runtime_error(std::string{"cannot load the TLS private key: "} + e.what());
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1)
    throw std::runtime_error("the TLS private key does not match the certificate");
  return context;
}

// RESTinio closes the connection on a body over its own limit without an answer; it gets a multiple
// of ours so that moderately oversized bodies still get a readable 413 and huge ones cost no memory.
constexpr std::size_t hard_body_factor = 4;

struct pending_request {
  restinio::request_handle_t handle;
  std::chrono::steady_clock::time_point started;
};

std::string lowercase(restinio::string_view_t s) {
  std::string out(s.data(), s.size());
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

struct http_server::impl {
  http_server_settings settings;
  request_sink sink;
  std::shared_ptr<spdlog::logger> log = sbm::log::get("gateway");
  restinio::running_server_handle_t<server_traits> server;
  restinio::running_server_handle_t<tls_server_traits> tls_server;
  std::atomic<std::uint64_t> next_id{1};
  mutable std::mutex mutex;
  std::unordered_map<std::uint64_t, pending_request> pending;

  template <class Traits>
  restinio::server_settings_t<Traits> make_settings() {
    const auto& s = settings;
    auto limits = restinio::incoming_http_msg_limits_t{}
                    .max_url_size(s.max_header_bytes)
                    .max_field_name_size(256)
                    .max_field_value_size(s.max_header_bytes)
                    .max_field_count(s.max_header_count)
                    .max_body_size(s.body_limit * hard_body_factor);
    restinio::server_settings_t<Traits> out;
    out.address(s.host)
      .port(s.port)
      .max_parallel_connections(s.max_connections)
      .incoming_http_msg_limits(limits)
      .handle_request_timeout(s.handle_timeout)
      .read_next_http_message_timelimit(s.read_timeout)
      .request_handler([this](restinio::request_handle_t req) { return handle(std::move(req)); });
    return out;
  }

  restinio::request_handling_status_t handle(restinio::request_handle_t req) {
    auto id = next_id.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> guard{mutex};
      pending.emplace(id, pending_request{req, std::chrono::steady_clock::now()});
    }
    http_request out;
    out.id = id;
    const auto& header = req->header();
    out.method = std::string{header.method().c_str()};
    out.path = std::string{header.path()};
    out.query = std::string{header.query()};
    out.headers.reserve(header.fields_count());
    for (const auto& field : header)
      out.headers.emplace_back(lowercase(field.name()), std::string{field.value()});
    out.peer = req->remote_endpoint().address().to_string();
    if (req->body().size() > settings.body_limit) {
      http_response too_large;
      too_large.status = 413;
      too_large.content_type = "application/problem+json";
      too_large.body = R"({"type":"urn:sbm:problem:body-too-large","title":"Payload Too Large","status":413,"detail":"request body of )" +
                       std::to_string(req->body().size()) + " bytes exceeds the limit of " +
                       std::to_string(settings.body_limit) + R"( bytes"})";
      respond(id, std::move(too_large));
      return restinio::request_accepted();
    }
    out.body = req->body();
    sink(std::move(out));
    return restinio::request_accepted();
  }

  void respond(std::uint64_t id, http_response response) {
    pending_request entry;
    {
      std::lock_guard<std::mutex> guard{mutex};
      auto i = pending.find(id);
      if (i == pending.end())
        return;
      entry = std::move(i->second);
      pending.erase(i);
    }
    auto& req = entry.handle;
    auto status = restinio::http_status_line_t{restinio::http_status_code_t{response.status},
                                               status_reason(response.status)};
    try {
      if (req->header().method() == restinio::http_method_head()) {
        // The same status and headers as the GET, no body: a proxy reusing the connection reads
        // exactly the header block. Content-Length is what the GET's body would be (RFC 9110 8.6).
        auto builder = req->create_response<restinio::user_controlled_output_t>(status);
        builder.append_header(restinio::http_field::content_type, response.content_type);
        for (auto& h : response.headers)
          builder.append_header(h.first, h.second);
        builder.set_content_length(response.body.size());
        builder.done();
      } else {
        auto builder = req->create_response(status);
        builder.append_header(restinio::http_field::content_type, response.content_type);
        for (auto& h : response.headers)
          builder.append_header(h.first, h.second);
        builder.set_body(std::move(response.body));
        builder.done();
      }
    } catch (const std::exception& e) {
      log->debug("response {} not delivered: {}", id, e.what());
    }
    auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                             entry.started)
                     .count();
    log->info("{} {} {} {:.2f}ms", req->header().method().c_str(),
              sbm::log::escape(std::string{req->header().path()}), response.status, elapsed);
  }

  static std::string status_reason(std::uint16_t status) {
    switch (status) {
      case 200: return "OK";
      case 201: return "Created";
      case 202: return "Accepted";
      case 204: return "No Content";
      case 400: return "Bad Request";
      case 401: return "Unauthorized";
      case 403: return "Forbidden";
      case 404: return "Not Found";
      case 405: return "Method Not Allowed";
      case 409: return "Conflict";
      case 413: return "Payload Too Large";
      case 415: return "Unsupported Media Type";
      case 422: return "Unprocessable Entity";
      case 429: return "Too Many Requests";
      case 500: return "Internal Server Error";
      case 503: return "Service Unavailable";
      case 504: return "Gateway Timeout";
      default: return "Status";
    }
  }
};

http_server::http_server(http_server_settings settings, request_sink sink)
  : impl_(std::make_unique<impl>()) {
  impl_->settings = std::move(settings);
  impl_->sink = std::move(sink);
}

http_server::~http_server() {
  stop();
}

void http_server::start() {
  auto* self = impl_.get();
  const auto& s = self->settings;
  if (s.tls()) {
    auto settings = self->make_settings<tls_server_traits>();
    settings.tls_context(make_tls_context(s));
    tls_handshake_timeout_ms = s.read_timeout.count();
    self->tls_server = restinio::run_async(restinio::own_io_context(), std::move(settings), s.threads);
  } else {
    self->server =
      restinio::run_async(restinio::own_io_context(), self->make_settings<server_traits>(), s.threads);
  }
}

void http_server::stop() {
  if (!impl_)
    return;
  if (impl_->server) {
    impl_->server->stop();
    impl_->server->wait();
    impl_->server.reset();
  }
  if (impl_->tls_server) {
    impl_->tls_server->stop();
    impl_->tls_server->wait();
    impl_->tls_server.reset();
  }
}

std::uint16_t http_server::port() const {
  return impl_->settings.port;
}

std::size_t http_server::in_flight() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->pending.size();
}

void http_server::respond(std::uint64_t request_id, http_response response) {
  impl_->respond(request_id, std::move(response));
}

}  // namespace sbm::gateway
