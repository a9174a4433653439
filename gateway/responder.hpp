#pragma once
// How the gateway actor completes a response without knowing about sockets: the HTTP server keeps
// each request's connection and answers when the actor hands back the response with the same id.
#include <cstdint>

#include "messages/http.hpp"

namespace sbm::gateway {

class responder {
 public:
  virtual ~responder() = default;
  // Thread-safe; an unknown or already answered id is ignored (the client may have gone).
  virtual void respond(std::uint64_t request_id, http_response response) = 0;
};

}  // namespace sbm::gateway
