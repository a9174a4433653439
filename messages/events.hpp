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

}  // namespace sbm
