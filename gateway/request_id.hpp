#pragma once
// Every request has an id: the client's X-Request-Id when it is sane, otherwise one made here. It
// is in the answer's X-Request-Id header, in every problem+json body, in the log lines the request
// causes and in the request_context of the work it starts (so it crosses nodes with the work).
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace sbm::gateway {

// 1..128 characters of [A-Za-z0-9._~:-], so it goes into headers, JSON and logs as it is; any
// other value is replaced, not refused (a client's tracing must not cost it its request).
bool sane_request_id(std::string_view id);

// Ids unique across nodes and restarts without coordination: a random prefix per generator, then
// a counter. Thread-safe.
class request_id_generator {
 public:
  request_id_generator();
  std::string next();

 private:
  std::string prefix_;
  std::atomic<std::uint64_t> counter_{1};
};

// The client's id when sane, else a new one.
std::string request_id_for(const std::string* client_value, request_id_generator& ids);

// A problem+json body (a JSON object of ours) with "request_id" added as its last member.
std::string with_request_id(std::string body, std::string_view request_id);

}  // namespace sbm::gateway
