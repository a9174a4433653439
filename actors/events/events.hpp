#pragma once
// The events family from outside: the in-cluster event bus and the Redis stream publisher.
#include <chrono>
#include <cstddef>

#include "messages/connections.hpp"
#include "messages/events.hpp"

namespace caf {
class actor_system;
}

namespace sbm::events {

// Redis stream that carries speaker.bucket.changed for external consumers.
inline constexpr const char* bucket_changed_stream = "sbm:events:speaker.bucket.changed";
// Approximate cap (XADD MAXLEN ~): old entries are trimmed, consumers must keep up within it.
inline constexpr long stream_max_length = 100000;

// ack_timeout bounds how long a publish waits for each durable subscriber. `durable_expected` is
// how many durable subscribers the node wires up: while fewer are registered (one is restarting),
// a publish is answered unavailable instead of "delivered", so the outbox keeps the event and
// retries until the subscriber is back and acknowledges it.
event_bus_actor spawn_event_bus(caf::actor_system& sys,
                                std::chrono::milliseconds ack_timeout = std::chrono::seconds{10},
                                std::size_t durable_expected = 0);

// This node's listener on `bus` for HTTP clients (messages/events.hpp): keeps the last `capacity`
// events, each event_id once; at most `max_waiting` reads wait for the next event at once (past
// it: overloaded, with Retry-After), each at most its wait_ms.
event_feed_actor spawn_event_feed(caf::actor_system& sys, event_bus_actor bus, std::size_t capacity,
                                  std::size_t max_waiting);

stream_publisher_actor spawn_stream_publisher(
  caf::actor_system& sys, redis_actor redis,
  std::chrono::milliseconds redis_timeout = std::chrono::seconds{5});

}  // namespace sbm::events
