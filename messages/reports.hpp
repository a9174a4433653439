#pragma once
// Contracts of the reports family: QA files an error report on a draft (SPEC "Error report", seed
// 4.1); once it is committed, a saga turns it into a searchable pattern, tells pattern learning and
// schedules a verification. Notes travel in plaintext inside the actor system and are encrypted
// only at rest, so every reader sees what QA wrote.
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/atoms.hpp"
#include "messages/context.hpp"
#include "messages/metrics.hpp"

namespace sbm {

struct report_submission {
  std::string speaker_id;
  std::string client_id;
  std::string job_id;
  std::string original_text;   // the erroneous span of the draft
  std::string corrected_text;  // what it should have been
  std::vector<std::string> error_categories;
  std::string audio_quality;     // excellent | good | fair | poor
  std::string speaker_clarity;   // clear | moderate | unclear
  std::string background_noise;  // none | low | moderate | high
  std::int32_t number_of_speakers = 1;
  bool overlapping_speech = false;
  bool requires_specialized_knowledge = false;
  std::string additional_notes;  // empty = none
  std::string context_notes;     // empty = none
  std::string context_text;      // surrounding draft text, embedded with the span; empty = none
  std::string actor;             // who files it (a user, or "service:<id>")
  request_context ctx;           // not stored with the report
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_submission& x) {
  return f(caf::meta::type_name("report_submission"), x.speaker_id, x.client_id, x.job_id,
           x.original_text, x.corrected_text, x.error_categories, x.audio_quality,
           x.speaker_clarity, x.background_noise, x.number_of_speakers, x.overlapping_speech,
           x.requires_specialized_knowledge, x.additional_notes, x.context_notes, x.context_text,
           x.actor, x.ctx);
}

// One line of a report's saga log: what happened to it after it was stored, and when.
struct saga_entry {
  std::int64_t at_ms = 0;
  std::string step;  // store | index | notify | schedule | status | retry
  std::string note;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_entry& x) {
  return f(caf::meta::type_name("saga_entry"), x.at_ms, x.step, x.note);
}

// A stored report, notes decrypted. A note whose token cannot be decrypted (wrong key, damaged
// row) reads as "[Encrypted Data]", as seed 7.2 does, instead of failing the whole read.
struct error_report {
  std::int64_t id = 0;
  report_submission fields;       // fields.actor is who filed it
  std::string bucket_type;        // the speaker's bucket when the report was filed
  std::string status;             // pending | rectified | not_rectified
  double weight = 0.5;            // the pattern's weight (seed 3.2)
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string saga_step;          // index | notify | schedule | done: the next step to run
  std::int32_t saga_attempts = 0; // failed attempts of that step so far
  std::string saga_last_error;
  std::vector<saga_entry> saga_log;  // oldest first; filled by get only
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, error_report& x) {
  return f(caf::meta::type_name("error_report"), x.id, x.fields, x.bucket_type, x.status,
           x.weight, x.created_at_ms, x.updated_at_ms, x.saga_step, x.saga_attempts,
           x.saga_last_error, x.saga_log);
}

// The answer to filing. A refusal is an answer, not a failure: the report is well understood and
// wrong (no such speaker, a job of another speaker), and the client needs the field to fix.
struct report_receipt {
  static constexpr std::uint8_t accepted = 0;
  static constexpr std::uint8_t malformed = 1;      // a field breaks the rules (HTTP 400)
  static constexpr std::uint8_t unprocessable = 2;  // well-formed but wrong in meaning (HTTP 422)

  std::uint8_t outcome = accepted;
  std::string field;   // the offending field when refused
  std::string reason;  // for the client, naming the field
  error_report report; // as committed, when accepted
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_receipt& x) {
  return f(caf::meta::type_name("report_receipt"), x.outcome, x.field, x.reason, x.report);
}

// Keyset paging, newest first; every filter is a bound value. Empty strings and 0 mean "any".
struct report_query {
  std::string speaker_id;
  std::string status;
  std::string category;     // the report has this among its error_categories
  std::int64_t from_ms = 0; // created_at >= from
  std::int64_t to_ms = 0;   // created_at <= to
  std::uint32_t limit = 50;
  std::int64_t before_id = 0;  // the page holds ids below this (the previous page's last id)
  client_scope scope{};          // the caller's clients: no other client's report is listed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_query& x) {
  return f(caf::meta::type_name("report_query"), x.speaker_id, x.status, x.category, x.from_ms,
           x.to_ms, x.limit, x.before_id, x.scope);
}

struct report_page {
  std::vector<error_report> items;
  std::int64_t next_before_id = 0;  // 0 on the last page
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_page& x) {
  return f(caf::meta::type_name("report_page"), x.items, x.next_before_id);
}

// The verdict of a verification on a report. The pattern follows: its status and weight are
// re-indexed by the saga.
struct report_status_change {
  std::int64_t id = 0;
  std::string status;  // rectified | not_rectified
  std::string actor;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_status_change& x) {
  return f(caf::meta::type_name("report_status_change"), x.id, x.status, x.actor, x.ctx);
}

// The saga's "notify pattern learning" step: a report's pattern is now in the index (or its
// status changed). Whoever keeps derived state about a speaker's patterns (a correction cache)
// subscribes; a durable subscriber answers true once it has taken the change into account.
inline constexpr const char* pattern_learned_topic = "pattern.learned";

struct pattern_learned {
  std::int64_t report_id = 0;  // = the pattern id; a handler must be idempotent on it
  std::int64_t revision = 0;   // bumped by every status change, so (report_id, revision) is unique
  std::string speaker_id;
  std::string client_id;
  std::string status;
  double weight = 0.5;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_learned& x) {
  return f(caf::meta::type_name("pattern_learned"), x.report_id, x.revision, x.speaker_id,
           x.client_id, x.status, x.weight);
}

using pattern_learning_subscriber = caf::typed_actor<
  caf::replies_to<publish_atom, pattern_learned>::with<bool>>;

// What one submitted verification session says about the patterns it used, in the order QA's
// marks were committed: each verdict moves its report's weight one step (+0.1 rectified, -0.1
// not_rectified, in integer tenths clamped to [0, 10] at every step) and sets its status. Applied
// once per session_id: a repeat (a retry after a crash) changes nothing and answers the weights.
struct pattern_verdict {
  std::int64_t report_id = 0;
  std::string verdict;  // rectified | not_rectified
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_verdict& x) {
  return f(caf::meta::type_name("pattern_verdict"), x.report_id, x.verdict);
}

struct verification_verdicts {
  std::int64_t session_id = 0;
  std::string speaker_id;  // every report must be this speaker's: others are left alone
  std::string actor;
  std::vector<pattern_verdict> verdicts;
  request_context ctx;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification_verdicts& x) {
  return f(caf::meta::type_name("verification_verdicts"), x.session_id, x.speaker_id, x.actor,
           x.verdicts, x.ctx);
}

struct pattern_weight {
  std::int64_t report_id = 0;
  std::string status;
  double weight = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pattern_weight& x) {
  return f(caf::meta::type_name("pattern_weight"), x.report_id, x.status, x.weight);
}

struct verdicts_applied {
  std::vector<pattern_weight> weights;  // by report id, as they are after the session
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verdicts_applied& x) {
  return f(caf::meta::type_name("verdicts_applied"), x.weights);
}

// file answers only after the report and its saga row are committed together.
using reports_actor = caf::typed_actor<
  caf::replies_to<file_atom, report_submission>::with<report_receipt>,
  caf::replies_to<get_atom, std::int64_t>::with<error_report>,
  caf::replies_to<list_atom, report_query>::with<report_page>,
  caf::replies_to<update_atom, report_status_change>::with<error_report>,
  caf::replies_to<verify_atom, verification_verdicts>::with<verdicts_applied>,
  // its queues and its sagas' lag
  caf::replies_to<metrics_atom>::with<component_metrics>>;

}  // namespace sbm
