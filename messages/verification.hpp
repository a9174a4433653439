#pragma once
// The verification schedule: which speakers QA should verify next, and how urgently.
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/events.hpp"

namespace sbm {

struct scheduled_verification {
  std::int64_t id = 0;
  std::string speaker_id;
  std::string priority;  // "high" | "normal"
  std::string reason;
  std::string status;    // "scheduled" | ...
  std::int64_t source_event_id = 0;  // the bucket change that caused it; 0 when source_key did
  std::int64_t created_at_ms = 0;
  std::string source_key;            // the request's key (e.g. "report:42"); empty for events
  std::string client_id;             // the speaker's client; empty for rows from before it was kept
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduled_verification& x) {
  return f(caf::meta::type_name("scheduled_verification"), x.id, x.speaker_id, x.priority,
           x.reason, x.status, x.source_event_id, x.created_at_ms, x.source_key, x.client_id);
}

struct schedule_query {
  std::string priority;  // empty = any
  std::string speaker_id;  // empty = any
  std::uint32_t limit = 100;
  client_scope scope{};    // the caller's clients: no other client's verification is listed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, schedule_query& x) {
  return f(caf::meta::type_name("schedule_query"), x.priority, x.speaker_id, x.limit, x.scope);
}

struct verification_schedule {
  std::vector<scheduled_verification> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification_schedule& x) {
  return f(caf::meta::type_name("verification_schedule"), x.items);
}

// A verification asked for by another family (the report saga). source_key names the cause and is
// unique: asking again with the same key schedules nothing new and still answers true, so the
// caller can retry after a crash without knowing whether the first request was committed.
struct verification_request {
  std::string speaker_id;
  std::string priority;  // "high" | "normal"
  std::string reason;
  std::string source_key;
  std::string client_id;  // the speaker's client, so scoped readers see the row
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification_request& x) {
  return f(caf::meta::type_name("verification_request"), x.speaker_id, x.priority, x.reason,
           x.source_key, x.client_id);
}

// schedule answers true once the row is committed (or was already there).
using verification_scheduler_actor = caf::typed_actor<
  caf::replies_to<publish_atom, bucket_changed>::with<bool>,
  caf::replies_to<schedule_atom, verification_request>::with<bool>,
  caf::replies_to<list_atom, schedule_query>::with<verification_schedule>>;

}  // namespace sbm
