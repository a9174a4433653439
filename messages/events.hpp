#pragma once
// speaker.bucket.changed, inside the actor system. Outside it travels as Protobuf
// (messages/proto/events.proto) on a Redis stream.
#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"

namespace sbm {

inline constexpr const char* bucket_changed_topic = "speaker.bucket.changed";

struct bucket_changed {
  std::int64_t event_id = 0;   // the outbox row id: unique, so handlers can be idempotent
  std::string speaker_id;
  std::string client_id;
  std::string previous_bucket;
  std::string new_bucket;
  std::string reason;
  std::int64_t timestamp_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bucket_changed& x) {
  return f(caf::meta::type_name("bucket_changed"), x.event_id, x.speaker_id, x.client_id,
           x.previous_bucket, x.new_bucket, x.reason, x.timestamp_ms);
}

// A durable subscriber acknowledges only after it has made the event's effect durable; the
// publisher retries until it does, so handlers must be idempotent on event_id.
using bucket_changed_subscriber = caf::typed_actor<
  caf::replies_to<publish_atom, bucket_changed>::with<bool>>;

// The other members' event buses, told by this node's membership actor whenever they change.
using peers_atom = caf::atom_constant<caf::atom("peers")>;
// An event published on another member's bus, for this member's own subscribers.
using relayed_atom = caf::atom_constant<caf::atom("relayed")>;

// The event bus: fans an event out to subscribers inside the cluster. `publish` answers true once
// every durable subscriber of this node acknowledged; non-durable subscribers get it
// fire-and-forget, on this node and, through `relayed` to the buses `peers` named, on every other
// member (each event is published once per cluster, by the node that runs the outbox relay, so a
// durable effect happens once and every member's listeners still see it).
// `subscribe` takes (subscriber, durable); a subscriber that dies is dropped.
using event_bus_actor = caf::typed_actor<
  caf::replies_to<publish_atom, bucket_changed>::with<bool>,
  caf::reacts_to<subscribe_atom, caf::actor, bool>,
  caf::reacts_to<peers_atom, std::vector<caf::actor>>,
  caf::reacts_to<relayed_atom, bucket_changed>>;

// Writes events to the external Redis stream; answers true once Redis has the entry. The outbox
// relay feeds it separately from the bus, so Redis being down never holds up internal subscribers.
using stream_publisher_actor = caf::typed_actor<
  caf::replies_to<publish_atom, bucket_changed>::with<bool>>;

// The event feed: this node's listener on the bus, kept for HTTP clients (GET
// /v1/events/bucket-changes). It holds the last events it heard, each once (by event_id), numbered
// in the order it heard them; a client reads those after its cursor, or waits for the next.
struct event_feed_query {
  std::uint64_t after = 0;     // the feed's number of the last event the client has (0: none)
  std::uint32_t limit = 100;
  std::int64_t wait_ms = 0;    // with nothing after the cursor, wait this long for an event
  client_scope scope{};        // the caller's: events of other clients are left out
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_feed_query& x) {
  return f(caf::meta::type_name("event_feed_query"), x.after, x.limit, x.wait_ms, x.scope);
}

struct event_feed_entry {
  std::uint64_t seq = 0;  // the feed's number: the client's next cursor
  bucket_changed event;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_feed_entry& x) {
  return f(caf::meta::type_name("event_feed_entry"), x.seq, x.event);
}

struct event_feed_page {
  std::vector<event_feed_entry> events;  // oldest first
  std::uint64_t next = 0;  // the cursor to ask with next time
  bool gap = false;        // events after the cursor were already dropped (the feed keeps the last N)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_feed_page& x) {
  return f(caf::meta::type_name("event_feed_page"), x.events, x.next, x.gap);
}

using event_feed_actor = caf::typed_actor<
  caf::reacts_to<publish_atom, bucket_changed>,  // from the bus (a non-durable subscriber)
  caf::replies_to<list_atom, event_feed_query>::with<event_feed_page>,
  caf::reacts_to<idle_atom, std::uint64_t>>;     // its own timer: a waiting read's time is up

}  // namespace sbm
