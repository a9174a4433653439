#include "gateway/http_server.hpp"
#include "gateway/idempotency_key.hpp"
#include "gateway/request_id.hpp"

#include <malloc.h>
#include <restinio/all.hpp>
#include <restinio/tls.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <optional>
#include <unordered_map>

#ifndef SBM_RESTINIO_EARLY_HEADERS_PATCH
#error "RESTinio must be SBM's patched copy (gateway/restinio-0.6.16-early-headers.patch): without it request bodies are buffered before their headers are checked"
#endif

#include "gateway/request_checks.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

namespace {

// The text of a client's address, as every limit, audit row and log line names it. IPv4 is
// written by hand: asio's to_string goes through inet_ntop and sprintf, which cost as much as a
// tenth of answering a GET (a callgrind profile), and it runs for every request.
std::string address_text(const asio::ip::address& address) {
  if (!address.is_v4())
    return address.to_string();
  const auto bytes = address.to_v4().to_bytes();
  std::string out;
  out.reserve(15);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0)
      out += '.';
    const unsigned value = bytes[i];
    if (value >= 100)
      out += static_cast<char>('0' + value / 100);
    if (value >= 10)
      out += static_cast<char>('0' + value / 10 % 10);
    out += static_cast<char>('0' + value % 10);
  }
  return out;
}

// Per-address connection limits at accept time (RESTinio's IP blocker), fed by RESTinio's
// connection state notices; the global limit is RESTinio's own connection count limiter.
class connection_gate {
 public:
  connection_gate(connection_limit_settings settings, std::set<std::string, std::less<>> exempt)
    : limits_(settings, std::move(exempt)) {}

  restinio::ip_blocker::inspection_result_t inspect(
    const restinio::ip_blocker::incoming_info_t& info) noexcept {
    try {
      auto address = address_text(info.remote_endpoint().address());
      std::lock_guard<std::mutex> guard{mutex_};
      if (limits_.admit(address, std::chrono::steady_clock::now()))
        return restinio::ip_blocker::allow();
      return restinio::ip_blocker::deny();
    } catch (const std::exception&) {
      return restinio::ip_blocker::allow();  // cannot tell: the global limit still holds
    }
  }

  void state_changed(const restinio::connection_state::notice_t& notice) noexcept {
    try {
      auto cause = notice.cause();
      std::lock_guard<std::mutex> guard{mutex_};
      if (restinio::get_if<restinio::connection_state::accepted_t>(&cause))
        limits_.opened(notice.connection_id(), address_text(notice.remote_endpoint().address()));
      else
        limits_.closed(notice.connection_id());
    } catch (const std::exception&) {
    }
  }

 private:
  std::mutex mutex_;
  connection_limits limits_;
};

struct server_traits : restinio::default_traits_t {
  static constexpr bool use_connection_count_limiter = true;
  using ip_blocker_t = connection_gate;
  using connection_state_listener_t = connection_gate;
};

struct tls_server_traits : restinio::default_tls_traits_t {
  static constexpr bool use_connection_count_limiter = true;
  using ip_blocker_t = connection_gate;
  using connection_state_listener_t = connection_gate;
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

// A body declared over our limit but within this multiple of it is read past (not stored) and gets
// a readable 413; beyond it the answer goes out at once and the connection closes, so a huge
// declared length costs neither memory nor bandwidth. Chunked bodies are held to it by RESTinio.
constexpr std::size_t hard_body_factor = 4;

struct pending_request {
  restinio::request_handle_t handle;
  std::chrono::steady_clock::time_point started;
  bool close = false;           // answer, then close: what follows on the connection is not trusted
  std::size_t body_bytes = 0;   // of the node's body budget, given back with the answer
  std::string request_id;
  bool write = false;           // a lost answer leaves the outcome unknown
  std::uint64_t owner = 0;      // the gateway incarnation holding it (0: none yet)
  int route = -1;               // the route it matched, for the request counters (-1: none yet)
};

bool is_write_method(const restinio::http_method_id_t& m) {
  return m == restinio::http_method_post() || m == restinio::http_method_put() ||
         m == restinio::http_method_patch() || m == restinio::http_method_delete();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

// Only the header fields something reads are copied out of RESTinio's request (lowercased, each
// occurrence kept so duplicates stay visible): copying every field cost an allocation or two per
// field on the HTTP thread, for every request.
// What the early look reads: framing_problem's single-occurrence fields, Expect, and the two
// that decide whether a body is worth holding.
constexpr std::string_view early_fields[] = {"host", "authorization", "content-type", "content-length",
                                             "expect"};
// What the gateway reads once the request is in: the front door (authorization, idempotency-key),
// the lanes (content-type, idempotency-key) and the client's address behind a proxy.
constexpr std::string_view forwarded_fields[] = {"authorization", "content-type", idempotency_header,
                                                 "x-forwarded-for"};

template <std::size_t N>
header_list fields_named(const restinio::http_request_header_t& header,
                         const std::string_view (&names)[N]) {
  header_list out;
  out.reserve(N);  // one allocation, not one per growth
  for (const auto& f : header) {
    const std::string_view name{f.name().data(), f.name().size()};
    for (auto wanted : names)
      if (iequals(name, wanted)) {
        out.emplace_back(std::string{wanted}, std::string{f.value()});
        break;
      }
  }
  return out;
}

// --- The early look at a request's headers (the patched RESTinio calls these) -------------------
// Process-wide, like the handshake deadline above: the patch calls plain function pointers.

std::atomic<std::size_t> body_bytes_held{0};
std::atomic<std::size_t> released_since_trim{0};

// glibc keeps freed heap memory for reuse; after a flood of bodies the node would stay at its
// peak. Once this much has been given back and little is held, the heap is trimmed back to the OS.
constexpr std::size_t trim_after_bytes = std::size_t{32} << 20;

struct early_policy {
  std::size_t body_limit = 0;
  std::size_t hard_body_limit = 0;
  std::size_t budget = 0;
  std::function<bool(std::string_view)> token_ok;
};

std::atomic<const early_policy*> active_policy{nullptr};

bool reserve_body(std::size_t bytes, std::size_t budget) {
  auto held = body_bytes_held.load();
  do {
    if (bytes > budget || held > budget - bytes)
      return false;
  } while (!body_bytes_held.compare_exchange_weak(held, held + bytes));
  return true;
}

void release_body(std::size_t bytes) noexcept {
  if (bytes == 0)
    return;
  auto held = body_bytes_held.fetch_sub(bytes) - bytes;
  auto released = released_since_trim.fetch_add(bytes) + bytes;
  if (released >= trim_after_bytes && held < (std::size_t{1} << 20) &&
      released_since_trim.exchange(0) >= trim_after_bytes)
    ::malloc_trim(0);
}

const std::string* find_field(const header_list& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.first == name)
      return &f.second;
  return nullptr;
}

restinio::sbm_patch::headers_verdict inspect_headers(const http_parser& parser,
                                                     restinio::http_request_header_t& header,
                                                     bool obs_fold) {
  using restinio::sbm_patch::body_action;
  restinio::sbm_patch::headers_verdict verdict;
  const auto* policy = active_policy.load();
  if (!policy)
    return verdict;
  const auto fields = fields_named(header, early_fields);
  const bool chunked = (parser.flags & F_CHUNKED) != 0;
  const bool known_length = parser.content_length != ULLONG_MAX;
  const bool has_body = chunked || (known_length && parser.content_length > 0);
  const auto* expect = find_field(fields, "expect");
  // The client waits for "100 Continue" (or the final answer) before it sends the body.
  const bool waits = expect && has_body && parser.http_major == 1 && parser.http_minor == 1;

  // The answer is decided here; the handler sends it. `read_past`: the body is read and dropped,
  // so the connection stays usable; otherwise no body is read and the connection closes after
  // the answer (a waiting client has sent nothing, and a framing we refuse cannot be trusted).
  auto refuse = [&](unsigned status, std::string detail, bool read_past, const char* retry_after = nullptr) {
    header.set_field("sbm:refusal-status", std::to_string(status));
    header.set_field("sbm:refusal-detail", std::move(detail));
    if (retry_after)
      header.set_field("sbm:retry-after", retry_after);
    verdict.body = read_past && !waits ? body_action::discard : body_action::skip;
    if (verdict.body == body_action::skip)
      header.set_field("sbm:close", "1");
    return verdict;
  };

  if (obs_fold)
    return refuse(400, "a header is folded over several lines (obs-fold); send each on one line", false);
  if (auto why = framing_problem(parser.http_major, parser.http_minor, fields))
    return refuse(400, *why, false);
  if (expect && !iequals(*expect, "100-continue"))
    return refuse(417, "only 'Expect: 100-continue' is understood", false);
  if (!has_body)
    return verdict;
  if (known_length && parser.content_length > policy->body_limit)
    return refuse(413,
                  "request body of " + std::to_string(parser.content_length) +
                    " bytes exceeds the limit of " + std::to_string(policy->body_limit) + " bytes",
                  parser.content_length <= policy->hard_body_limit);
  const auto* content_type = find_field(fields, "content-type");
  if (!content_type || !is_json_media_type(*content_type))
    return refuse(415, "the request body must be application/json (optionally ; charset=utf-8)", true);
  if (policy->token_ok) {
    const auto* authorization = find_field(fields, "authorization");
    bool genuine = authorization && authorization->compare(0, 7, "Bearer ") == 0 &&
                   policy->token_ok(std::string_view{*authorization}.substr(7));
    if (!genuine) {
      // Not answered here: the gateway answers (and audits) the 401 as for any request. Only
      // the body is never stored.
      verdict.body = waits ? body_action::skip : body_action::discard;
      if (waits)
        header.set_field("sbm:close", "1");
      return verdict;
    }
  }
  const std::size_t bytes = known_length ? static_cast<std::size_t>(parser.content_length)
                                         : policy->hard_body_limit;
  if (!reserve_body(bytes, policy->budget))
    return refuse(503, "this node holds as much request body data as its budget allows; retry shortly",
                  true, "1");
  verdict.reserved = bytes;
  verdict.send_continue = waits;
  return verdict;
}

// The problem type of each answer the HTTP server gives by itself.
const char* problem_slug(unsigned status) {
  switch (status) {
    case 400: return "bad-request-framing";
    case 413: return "body-too-large";
    case 415: return "unsupported-media-type";
    case 417: return "expectation-failed";
    case 503: return "body-budget";
    default: return "http";
  }
}

std::string problem_body(unsigned status, std::string_view title, std::string_view detail) {
  // `detail` is our own text (numbers and fixed words), never the client's bytes.
  return R"({"type":"urn:sbm:problem:)" + std::string{problem_slug(status)} + R"(","title":")" +
         std::string{title} + R"(","status":)" + std::to_string(status) + R"(,"detail":")" +
         std::string{detail} + R"("})";
}

}  // namespace


struct http_server::impl {
  http_server_settings settings;
  // Owned here (not by RESTinio) so answers can be posted to it; declared before the servers so it
  // outlives them.
  restinio::asio_ns::io_context io;
  request_sink sink;
  std::shared_ptr<spdlog::logger> log = sbm::log::get("gateway");
  restinio::running_server_handle_t<server_traits> server;
  restinio::running_server_handle_t<tls_server_traits> tls_server;
  std::atomic<std::uint64_t> next_id{1};
  // An answer's bytes, ready for its connection.
  struct ready_answer {
    restinio::impl::connection_handle_t connection;
    restinio::request_id_t request = 0;
    bool keep_alive = true;
    restinio::write_group_t bytes{restinio::writable_items_container_t{}};
  };

  // A flush is posted behind the handlers already queued (the rest of the sockets epoll reported
  // ready), so it sends what the whole pass handed over; one at a time.
  std::atomic<bool> flush_posted{false};
  std::mutex ready_mutex;
  std::vector<ready_answer> ready;  // answers made, not yet written (see push_ready)
  mutable std::mutex mutex;
  std::unordered_map<std::uint64_t, pending_request> pending;
  early_policy policy;
  std::shared_ptr<connection_gate> gate;
  request_id_generator ids;
  // The deadline sweeper sleeps without a timeout while nothing is pending (an idle node does not
  // wake for it) and looks every tenth of the answer timeout (at most a second) otherwise.
  mutable std::condition_variable changed;  // pending became non-empty for the sweeper; stopping
  bool sweeper_waiting = false;
  // Only a drain (wait_idle) is woken when pending empties: at a few connections it empties after
  // most answers, and waking the sweeper for it cost two futex calls and a context switch each.
  mutable std::condition_variable drained;
  mutable std::size_t drain_waiters = 0;
  bool stopping = false;
  std::thread sweeper;

  void sweep_loop() {
    const auto step = std::min<std::chrono::milliseconds>(
      std::chrono::seconds(1), std::max<std::chrono::milliseconds>(settings.answer_timeout / 10,
                                                                    std::chrono::milliseconds(10)));
    std::unique_lock<std::mutex> guard{mutex};
    while (!stopping) {
      if (pending.empty()) {
        sweeper_waiting = true;
        changed.wait(guard, [this] { return stopping || !pending.empty(); });
        sweeper_waiting = false;
        continue;
      }
      changed.wait_for(guard, step);
      const auto now = std::chrono::steady_clock::now();
      std::vector<std::pair<std::uint64_t, bool>> expired;
      for (const auto& [id, entry] : pending)
        if (now - entry.started >= settings.answer_timeout)
          expired.emplace_back(id, entry.write);
      if (expired.empty())
        continue;
      guard.unlock();
      for (const auto& [id, write] : expired)
        respond(id, settings.unanswered(write, unanswered_cause::timed_out));
      guard.lock();
    }
  }

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
      .ip_blocker(gate)
      .connection_state_listener(gate)
      .incoming_http_msg_limits(limits)
      .handle_request_timeout(s.handle_timeout)
      .read_next_http_message_timelimit(s.read_timeout)
      .request_handler([this](restinio::request_handle_t req) { return handle(std::move(req)); });
    return out;
  }

  restinio::request_handling_status_t handle(restinio::request_handle_t req) {
    auto id = next_id.fetch_add(1, std::memory_order_relaxed);
    const auto& header = req->header();
    // Every body that reached a handler was accounted by inspect_headers: it is given back with
    // the answer, whoever answers.
    auto request_id = [&] {
      auto value = header.get_field_or("x-request-id", "");
      return value.empty() ? ids.next() : request_id_for(&value, ids);
    }();
    pending_request entry{req, std::chrono::steady_clock::now(), header.has_field("sbm:close"),
                          req->body().size(), request_id, is_write_method(header.method()), 0};
    {
      std::lock_guard<std::mutex> guard{mutex};
      pending.emplace(id, std::move(entry));
      if (sweeper_waiting && pending.size() == 1)
        changed.notify_all();
    }
    auto refusal = header.get_field_or("sbm:refusal-status", "");
    if (!refusal.empty()) {
      // Decided from the headers alone, before the body (if any) was read.
      http_response early;
      early.status = static_cast<std::uint16_t>(std::stoi(refusal));
      early.type = media::problem_json;
      early.body = problem_body(early.status, status_reason(early.status),
                                header.get_field_or("sbm:refusal-detail", ""));
      auto retry_after = header.get_field_or("sbm:retry-after", "");
      if (!retry_after.empty())
        early.headers.emplace_back("Retry-After", retry_after);
      respond(id, std::move(early));
      return restinio::request_accepted();
    }
    http_request out;
    out.id = id;
    out.request_id = std::move(request_id);  // the pending entry holds its own copy
    out.method = std::string{header.method().c_str()};
    out.path = std::string{header.path()};
    out.query = std::string{header.query()};
    out.headers = fields_named(header, forwarded_fields);
    out.peer = client_address(address_text(req->remote_endpoint().address()), out.headers,
                              settings.trusted_proxies);
    if (req->body().size() > settings.body_limit) {  // chunked: its length was not declared
      http_response too_large;
      too_large.status = 413;
      too_large.type = media::problem_json;
      too_large.body = problem_body(413, "Payload Too Large",
                                    "request body of " + std::to_string(req->body().size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(settings.body_limit) + " bytes");
      respond(id, std::move(too_large));
      return restinio::request_accepted();
    }
    // The body moves on instead of being copied (RESTinio's request no longer needs it; it is
    // const only through the accessor), so a body is held once, not twice.
    out.body = std::move(const_cast<std::string&>(req->body()));
    // Hashed here, on the HTTP thread, so the gateway actor every request crosses does no work
    // proportional to a body.
    if (header.has_field(restinio::string_view_t{idempotency_header.data(), idempotency_header.size()}))
      out.digest = request_digest(out.method, out.path, out.query, out.body);
    sink(std::move(out));
    if (settings.flush && !flush_posted.exchange(true))
      restinio::asio_ns::post(io, [this] {
        flush_posted = false;
        settings.flush();
      });
    return restinio::request_accepted();
  }

  // `route`: the route to count the answer under when the request was never handed over.
  // Whoever answers (a CAF worker, the sweeper, the front door inside a handler) makes the answer's
  // bytes here, on its own thread; an HTTP thread only writes them (`write_ready`).
  void respond(std::uint64_t id, http_response response, std::optional<int> route = std::nullopt) {
    pending_request entry;
    {
      std::lock_guard<std::mutex> guard{mutex};
      auto i = pending.find(id);
      if (i == pending.end())
        return;
      entry = std::move(i->second);
      pending.erase(i);
      if (drain_waiters > 0 && pending.empty())
        drained.notify_all();
    }
    release_body(entry.body_bytes);
    if (response.type == media::problem_json)
      response.body = with_request_id(std::move(response.body), entry.request_id);
    auto& req = entry.handle;
    const bool head = req->header().method() == restinio::http_method_head();
    try {
      push_ready(make_answer(*req, response, entry.close, head, entry.request_id));
    } catch (const std::exception& e) {
      log->debug("response {} not delivered: {}", id, e.what());
    }
    const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - entry.started).count();
    if (settings.counters)
      settings.counters->count(route.value_or(entry.route),
                               metrics::method_of(req->header().method().c_str()), response.status,
                               seconds);
    // Checked first: the arguments (an escaped copy of the path) cost more than the check.
    if (!log->should_log(spdlog::level::info))
      return;
    const auto elapsed = seconds * 1000;
    log->info("[{}] {} {} {} {:.2f}ms", entry.request_id, req->header().method().c_str(),
              sbm::log::escape(std::string{req->header().path()}), response.status, elapsed);
  }

  // What RESTinio's response builder does in done(), minus the hand-off: done() dispatches every
  // answer to the connection's strand from the answering thread, which is one post (and, with
  // the HTTP thread asleep in epoll_wait, one interrupt of it) per answer. The header string is
  // built here so the HTTP thread, the limit under load, does not do it.
  static ready_answer make_answer(restinio::request_t& req, http_response& response, bool close,
                                  bool head, const std::string& request_id) {
    auto& connection = restinio::impl::access_req_connection(req);
    if (!connection)
      throw std::runtime_error("already answered");
    auto reason = status_reason(response.status);
    const auto status_line_size = 13 + reason.size();  // "HTTP/1.1 200 " and the reason
    restinio::http_response_header_t header{
      restinio::http_status_line_t{restinio::http_status_code_t{response.status}, std::move(reason)}};
    header.should_keep_alive(req.header().should_keep_alive() && !close);
    header.add_field(restinio::http_field::content_type, std::string{response.content_type()});
    for (auto& h : response.headers)
      header.add_field(std::move(h.first), std::move(h.second));
    header.add_field("X-Request-Id", request_id);
    // A HEAD answer has the same status and headers as the GET and no body: a proxy reusing the
    // connection reads exactly the header block. Content-Length is what the GET's body would be
    // (RFC 9110 8.6).
    header.content_length(response.body.size());
    restinio::writable_items_container_t items;
    items.reserve(2);
    items.emplace_back(restinio::impl::create_header_string(header));
    if (!head && !response.body.empty())
      items.emplace_back(std::move(response.body));
    ready_answer out;
    out.keep_alive = header.should_keep_alive();
    out.request = req.request_id();
    out.bytes = restinio::write_group_t{std::move(items)};
    out.bytes.status_line_size(status_line_size);
    out.connection = std::move(connection);
    return out;
  }

  // The completion queue: only the answer that finds it empty posts a write to the HTTP threads,
  // and that write takes every answer queued by then, so answers arriving together wake the HTTP
  // thread once. Posted, never run inline: an answer given inside the handler that received its
  // request is written after that handler returns (RESTinio 0.6 loses the next pipelined request
  // on a keep-alive connection otherwise). Bounded by `pending`: every entry was taken out of it.
  void push_ready(ready_answer answer) {
    bool first = false;
    {
      std::lock_guard<std::mutex> guard{ready_mutex};
      first = ready.empty();
      ready.push_back(std::move(answer));
    }
    if (first)
      restinio::asio_ns::post(io, [this] { write_ready(); });
  }

  void write_ready() {
    std::vector<ready_answer> batch;
    {
      std::lock_guard<std::mutex> guard{ready_mutex};
      batch.swap(ready);
    }
    for (auto& a : batch) {
      // On an HTTP thread the connection's strand runs the write at once, unless another HTTP
      // thread holds that strand (then it runs there next).
      const restinio::response_output_flags_t flags{restinio::response_parts_attr_t::final_parts,
                                                    restinio::response_connection_attr(a.keep_alive)};
      try {
        a.connection->write_response_parts(a.request, flags, std::move(a.bytes));
      } catch (const std::exception& e) {
        log->debug("response on connection {} not written: {}", a.connection->connection_id(), e.what());
      }
    }
    batch.clear();
    // The next answers reuse this batch's storage instead of growing a new vector.
    std::lock_guard<std::mutex> guard{ready_mutex};
    if (ready.empty())
      ready.swap(batch);
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
      case 417: return "Expectation Failed";
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
  self->gate = std::make_shared<connection_gate>(s.per_address, s.trusted_proxies);
  self->policy.body_limit = s.body_limit;
  self->policy.hard_body_limit = s.body_limit * hard_body_factor;
  self->policy.budget = s.body_budget;
  self->policy.token_ok = s.token_ok;
  active_policy = &self->policy;
  restinio::sbm_patch::release_hook = &release_body;
  restinio::sbm_patch::headers_hook = &inspect_headers;
  self->stopping = false;
  self->sweeper = std::thread([self] { self->sweep_loop(); });
  if (s.tls()) {
    auto settings = self->make_settings<tls_server_traits>();
    settings.tls_context(make_tls_context(s));
    tls_handshake_timeout_ms = s.read_timeout.count();
    self->tls_server = restinio::run_async(restinio::external_io_context(self->io), std::move(settings), s.threads);
  } else {
    self->server =
      restinio::run_async(restinio::external_io_context(self->io), self->make_settings<server_traits>(), s.threads);
  }
}

void http_server::stop() {
  if (!impl_)
    return;
  // Bodies still in flight are given back by RESTinio as it closes them, so release stays set.
  restinio::sbm_patch::headers_hook = nullptr;
  const early_policy* mine = &impl_->policy;
  active_policy.compare_exchange_strong(mine, nullptr);
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
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    impl_->stopping = true;
    impl_->changed.notify_all();
  }
  if (impl_->sweeper.joinable())
    impl_->sweeper.join();
}

std::uint16_t http_server::port() const {
  return impl_->settings.port;
}

std::size_t http_server::in_flight() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->pending.size();
}

bool http_server::wait_idle(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> guard{impl_->mutex};
  ++impl_->drain_waiters;
  const bool idle =
    impl_->drained.wait_until(guard, deadline, [this] { return impl_->pending.empty(); });
  --impl_->drain_waiters;
  return idle;
}

void http_server::respond(std::uint64_t request_id, http_response response) {
  impl_->respond(request_id, std::move(response));
}

void http_server::hand_over(std::uint64_t request_id, std::uint64_t owner, int route) {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  auto i = impl_->pending.find(request_id);
  if (i != impl_->pending.end()) {
    i->second.owner = owner;
    i->second.route = route;
  }
}

void http_server::respond_routed(std::uint64_t request_id, int route, http_response response) {
  impl_->respond(request_id, std::move(response), route);
}

void http_server::fail_owned(std::uint64_t owner) {
  std::vector<std::pair<std::uint64_t, bool>> held;
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    for (const auto& [id, entry] : impl_->pending)
      if (entry.owner == owner)
        held.emplace_back(id, entry.write);
  }
  for (const auto& [id, write] : held)
    impl_->respond(id, impl_->settings.unanswered(write, unanswered_cause::owner_gone));
}

http_response default_unanswered(bool write, unanswered_cause cause) {
  http_response r;
  r.status = 503;
  r.type = media::problem_json;
  const char* detail = write ? "the write may or may not have been saved; retry with the same Idempotency-Key"
                       : cause == unanswered_cause::timed_out ? "the request could not be completed in time"
                                                             : "the gateway restarted; retry";
  r.body = std::string{R"({"type":"urn:sbm:problem:unanswered","title":"Service Unavailable","status":503,"detail":")"} +
           detail + "\"}";
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace sbm::gateway
