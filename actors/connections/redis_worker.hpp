#pragma once
// One Redis connection in a detached actor (hiredis' synchronous API blocks). Connects lazily,
// drops the connection on failure and reconnects on the next command. Private to the supervisor.
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "messages/atoms.hpp"
#include "messages/connections.hpp"

namespace sbm::connections::detail {

using redis_worker_actor =
    caf::typed_actor<caf::replies_to<command_atom, redis_command>::with<redis_reply>,
                     caf::replies_to<probe_atom>::with<bool>>;  // PING

struct redis_worker_config {
  std::string name;
  std::string host;
  std::uint16_t port = 6379;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
};

redis_worker_actor spawn_redis_worker(caf::local_actor* parent, redis_worker_config config);

}  // namespace sbm::connections::detail
