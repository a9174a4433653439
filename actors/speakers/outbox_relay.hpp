#pragma once
// Moves committed rows from speakers.outbox to their targets: bucket changes to the event bus and
// to the Redis stream, audit entries of pins and unpins to the audit log. Each target is tracked on
// its own (delivered_at, stream_published_at, audited_at), so Redis being down never holds up the
// internal subscribers (verification scheduling) and vice versa. Delivery is at least once: a row
// is stamped only after its target acknowledged, so a crash between the two repeats it, and
// consumers deduplicate on the row id (event_id, the audit record's source_key).
#include <chrono>
#include <cstdint>
#include <memory>

#include "actors/speakers/store.hpp"
#include "messages/connections.hpp"
#include "messages/events.hpp"
#include "messages/metrics.hpp"
#include "messages/users.hpp"
#include "runtime/resilience/backoff.hpp"

namespace caf {
class actor_system;
}

namespace sbm {
class node_lease;  // messages/cluster.hpp
}

namespace sbm::speakers {

// flush: poll now (the shard nudges after a committed bucket change; a timer does it regularly).
// metrics: each target's lag, for the shard's metrics.
using outbox_relay_actor = caf::typed_actor<caf::reacts_to<flush_atom>,
                                            caf::replies_to<metrics_atom>::with<component_metrics>>;

struct outbox_relay_settings {
  store_ptr store;  // the family's port (store.hpp); null: PostgreSQL over db
  postgres_actor db;
  event_bus_actor bus;           // null: rows wait for the bus target
  stream_publisher_actor stream; // null: rows wait for the stream target (and are never purged)
  audit_actor audit;             // null: audit rows wait for the audit target
  std::chrono::milliseconds interval{500};
  std::chrono::milliseconds db_timeout{10000};
  std::chrono::milliseconds publish_timeout{10000};
  // Retries never stop (an event must not be lost); max_retries is ignored, the delay is capped.
  resilience::backoff_policy backoff{0, std::chrono::milliseconds{250},
                                     std::chrono::milliseconds{30000}, 0.2};
  // Rows both targets have are deleted once older than this: long enough to investigate a day's
  // incident from SQL, short enough that the table stays small.
  std::chrono::hours retention{24};
  std::uint32_t batch = 100;
  // Idempotency keys of speaker writes older than this are purged with the outbox.
  std::chrono::seconds idempotency_retention{std::chrono::hours{24}};
  // In a cluster, the node's lease: every stamp is fenced by the relay singleton held under its
  // epoch, so a relay that lost the singleton stamps nothing more (it delivers at least once).
  std::shared_ptr<const node_lease> lease;
};

outbox_relay_actor spawn_outbox_relay(caf::actor_system& sys, outbox_relay_settings settings);

}  // namespace sbm::speakers
