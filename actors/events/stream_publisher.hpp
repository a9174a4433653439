#pragma once
// Encodes bucket_changed as sbm.events.v1.BucketChanged (Protobuf) and appends it to the Redis
// stream with XADD: fields "event_id <id> type speaker.bucket.changed payload <bytes>".
// Answers true once Redis has the entry. A repeated publish (the relay retries) appends again, so
// external consumers deduplicate on event_id.
#include <string>
#include <vector>

#include "actors/events/events.hpp"

namespace sbm::events {

// The XADD argv for one event (exposed so tests can check the exact command).
std::vector<std::string> xadd_command(const bucket_changed& ev);

}  // namespace sbm::events
