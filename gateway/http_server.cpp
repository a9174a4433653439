#include "gateway/http_server.hpp"

#include <restinio/all.hpp>
#include <spdlog/spdlog.h>

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

using running_server = restinio::running_server_handle_t<server_traits>;

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
  running_server server;
  std::atomic<std::uint64_t> next_id{1};
  mutable std::mutex mutex;
  std::unordered_map<std::uint64_t, pending_request> pending;

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
    auto builder = req->create_response(status);
    builder.append_header(restinio::http_field::content_type, response.content_type);
    for (auto& h : response.headers)
      builder.append_header(h.first, h.second);
    builder.set_body(std::move(response.body));
    try {
      builder.done();
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
  auto limits = restinio::incoming_http_msg_limits_t{}
                  .max_url_size(s.max_header_bytes)
                  .max_field_name_size(256)
                  .max_field_value_size(s.max_header_bytes)
                  .max_field_count(s.max_header_count)
                  .max_body_size(s.body_limit * hard_body_factor);
  auto settings = restinio::server_settings_t<server_traits>{}
                    .address(s.host)
                    .port(s.port)
                    .max_parallel_connections(s.max_connections)
                    .incoming_http_msg_limits(limits)
                    .handle_request_timeout(s.handle_timeout)
                    .read_next_http_message_timelimit(s.read_timeout)
                    .request_handler([self](restinio::request_handle_t req) {
                      return self->handle(std::move(req));
                    });
  self->server = restinio::run_async(restinio::own_io_context(), std::move(settings), s.threads);
}

void http_server::stop() {
  if (impl_ && impl_->server) {
    impl_->server->stop();
    impl_->server->wait();
    impl_->server.reset();
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
