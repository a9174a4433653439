#pragma once
// The verification schedule: which speakers QA should verify next, and how urgently.
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/metrics.hpp"
#include "messages/events.hpp"
#include "messages/instanote.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "messages/users.hpp"

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

// Many verifications asked for at once (the report saga groups its sagas' schedule steps): stored
// in one statement and one commit, so either all are scheduled or none; each request is checked
// and keyed as if asked alone. At most max_verification_batch requests.
struct verification_request_batch {
  std::vector<verification_request> requests;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification_request_batch& x) {
  return f(caf::meta::type_name("verification_request_batch"), x.requests);
}

inline constexpr std::size_t max_verification_batch = 256;

// schedule answers true once the row is committed (or was already there); the commit does not wait
// for the WAL flush (runtime/db/commit.hpp), so its caller records its own acknowledgement after it.
using verification_scheduler_actor = caf::typed_actor<
  caf::replies_to<publish_atom, bucket_changed>::with<bool>,
  caf::replies_to<schedule_atom, verification_request>::with<bool>,
  caf::replies_to<schedule_atom, verification_request_batch>::with<bool>,
  caf::replies_to<list_atom, schedule_query>::with<verification_schedule>>;

// --- verification sessions ----------------------------------------------------------------------
// A QA person verifies a speaker: SBM pulls the speaker's jobs from InstaNote, corrects each draft
// and keeps the result in PostgreSQL (verification.sessions), served by one session actor per
// session under the sessions supervisor. QA marks corrections and counts residual errors per job
// as often as they like, then submits once.

struct session_start {
  request_context ctx;
  std::string speaker_id;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  std::vector<std::string> error_types;
  std::uint32_t max_jobs = 10;
  std::string owner;  // who starts it (a user id): only they or a qa_lead may submit it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_start& x) {
  return f(caf::meta::type_name("session_start"), x.ctx, x.speaker_id, x.from_ms, x.to_ms,
           x.error_types, x.max_jobs, x.owner);
}

// One job of a session: the draft as pulled, its correction, and the session-wide ids of its
// corrections (parallel to draft.corrections), which marks name.
struct session_job {
  verification_job job;
  corrected_draft draft;
  std::vector<std::int64_t> correction_ids;
  bool has_residual = false;        // QA counted the errors left after the corrections
  std::uint32_t residual_errors = 0;
  std::uint32_t words = 0;          // words of the corrected draft (the rate's denominator)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_job& x) {
  return f(caf::meta::type_name("session_job"), x.job, x.draft, x.correction_ids, x.has_residual,
           x.residual_errors, x.words);
}

struct session_mark {
  std::int64_t correction_id = 0;
  std::string verdict;  // rectified | not_rectified
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_mark& x) {
  return f(caf::meta::type_name("session_mark"), x.correction_id, x.verdict);
}

struct job_residual {
  std::string job_id;
  std::uint32_t residual_errors = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_residual& x) {
  return f(caf::meta::type_name("job_residual"), x.job_id, x.residual_errors);
}

// What a submit did, kept with the session (a replay answers it again).
struct submit_outcome {
  std::vector<pattern_weight> weights;  // the patterns the marks moved, as they are after
  std::vector<std::string> jobs_sampled;  // quality samples recorded (a job counted already is skipped)
  std::string bucket_before;
  std::string bucket_after;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_outcome& x) {
  return f(caf::meta::type_name("submit_outcome"), x.weights, x.jobs_sampled, x.bucket_before,
           x.bucket_after);
}

struct session_view {
  std::int64_t id = 0;
  std::string speaker_id;
  std::string client_id;
  std::string owner;
  std::string status;  // open | submitted | expired
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  std::vector<std::string> error_types;
  std::uint32_t max_jobs = 10;
  std::string source;  // where the jobs came from: instanote | cache
  bool stale = false;
  std::int64_t stale_since_ms = 0;
  std::string stale_reason;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // while open: when it expires unless used again
  std::int64_t submitted_at_ms = 0;
  std::string submitted_by;
  bool effects_done = false;  // the submit's weights, statuses and samples are all applied
  std::vector<session_job> jobs;   // empty once drafts_purged_at_ms is set
  std::vector<session_mark> marks;  // in the order they were last committed
  submit_outcome outcome;
  // When verification.draft-retention dropped the jobs with their drafts (0: never); the marks and
  // the outcome stay, and so do the residual counts in PostgreSQL.
  std::int64_t drafts_purged_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_view& x) {
  return f(caf::meta::type_name("session_view"), x.id, x.speaker_id, x.client_id, x.owner,
           x.status, x.from_ms, x.to_ms, x.error_types, x.max_jobs, x.source, x.stale,
           x.stale_since_ms, x.stale_reason, x.created_at_ms, x.expires_at_ms, x.submitted_at_ms,
           x.submitted_by, x.effects_done, x.jobs, x.marks, x.outcome, x.drafts_purged_at_ms);
}

struct session_ref {
  request_context ctx;
  std::int64_t id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_ref& x) {
  return f(caf::meta::type_name("session_ref"), x.ctx, x.id);
}

struct session_marks {
  request_context ctx;
  std::int64_t id = 0;
  std::vector<session_mark> marks;
  std::vector<job_residual> residuals;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_marks& x) {
  return f(caf::meta::type_name("session_marks"), x.ctx, x.id, x.marks, x.residuals);
}

// A refusal of marks is an answer (the client must fix a field), like report_receipt's.
struct marks_receipt {
  static constexpr std::uint8_t accepted = 0;
  static constexpr std::uint8_t unprocessable = 2;  // names what the session does not hold (422)
  std::uint8_t outcome = accepted;
  std::string field;
  std::string reason;
  session_view session;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, marks_receipt& x) {
  return f(caf::meta::type_name("marks_receipt"), x.outcome, x.field, x.reason, x.session);
}

struct session_submit {
  request_context ctx;
  std::int64_t id = 0;
  std::string actor;  // the gateway checked they are the owner or a qa_lead
  audit_origin by;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_submit& x) {
  return f(caf::meta::type_name("session_submit"), x.ctx, x.id, x.actor, x.by);
}

struct session_stats {
  std::uint64_t active = 0;       // session actors alive now
  std::uint64_t activations = 0;  // sessions loaded from PostgreSQL since start
  std::uint64_t expired = 0;      // sessions the sweeps expired since start
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_stats& x) {
  return f(caf::meta::type_name("session_stats"), x.active, x.activations, x.expired);
}

// Errors: not_found (no such session, or one of a client the caller may not reach), conflict (409:
// submitted already, or expired), unavailable (InstaNote down with nothing cached, with its
// retry_after; PostgreSQL down), overloaded (past verification.max-active-sessions).
using session_actor = caf::typed_actor<
  caf::replies_to<get_atom, session_ref>::with<session_view>,
  caf::replies_to<marks_atom, session_marks>::with<marks_receipt>,
  caf::replies_to<submit_atom, session_submit>::with<session_view>,
  caf::reacts_to<retry_atom>,  // the submit's effects failed a moment ago: try them again
  caf::reacts_to<idle_atom>>;

using verification_sessions_actor = caf::typed_actor<
  caf::replies_to<open_atom, session_start>::with<session_view>,
  caf::replies_to<get_atom, session_ref>::with<session_view>,
  caf::replies_to<marks_atom, session_marks>::with<marks_receipt>,
  caf::replies_to<submit_atom, session_submit>::with<session_view>,
  caf::replies_to<status_atom>::with<session_stats>,
  caf::replies_to<metrics_atom>::with<component_metrics>,
  caf::reacts_to<flush_atom>>;  // sweeps expired sessions now (its own timer sends it too)

}  // namespace sbm
