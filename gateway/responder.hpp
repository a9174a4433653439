#pragma once
// How the gateway actor completes a response without knowing about sockets: the HTTP server keeps
// each request's connection and answers when the actor hands back the response with the same id.
#include <cstdint>

#include "messages/http.hpp"

namespace sbm::gateway {

// Why the server answers a request itself: nobody answered it by its deadline, or its owner (a
// gateway incarnation) ended while holding it.
enum class unanswered_cause { timed_out, owner_gone };

class responder {
 public:
  virtual ~responder() = default;
  // Thread-safe; an unknown or already answered id is ignored (the client may have gone).
  virtual void respond(std::uint64_t request_id, http_response response) = 0;
  // The request matched `route` (an id of gateway/route_table.hpp; -1: none), under which its
  // answer is counted, and is now held by `owner` (one incarnation of the gateway).
  virtual void hand_over(std::uint64_t request_id, std::uint64_t owner, int route) = 0;
  // An answer decided before any hand-over (the front door's), counted under `route`.
  virtual void respond_routed(std::uint64_t request_id, int route, http_response response) = 0;
  // The owner is gone: answers every request it still held (503 with Retry-After; a write's
  // outcome is unknown, as it may have started).
  virtual void fail_owned(std::uint64_t owner) = 0;
};

}  // namespace sbm::gateway
