#pragma once
// The reports family's port to its durable state, in the family's words: filings (a batch of
// reports, each with its saga row, its first log line and its Idempotency-Key, in one commit),
// reads, verdicts, the saga's claims and steps, and the purge of old keys and notes. The actors
// never hold SQL: store_postgres.cpp (with report_rows.cpp, its column lists and parsers) is the
// only place with it; tests/sim/reports_memory.hpp is the in-memory store for simulation. Both
// enforce what guards correctness, and one contract suite
// (tests/integration/reports_store_contract_test.cpp) runs against both:
//   - one write per Idempotency-Key: a filing whose key was stored meanwhile writes nothing
//     (filed::key_taken); a verdict's key stored meanwhile is verdict_saved::key_taken;
//   - a verdict applies only to the status it was computed from (verdict_saved::status_moved);
//   - a verification session's verdicts apply once (the second time: applied == false);
//   - a saga row moves only under its claim, its revision and its step: a runner whose claim
//     lapsed and was taken over cannot move it, and a rewound row (a status change) is not moved
//     by a step that ran for the old revision. Log lines are written either way.
//
// How to use it: `store_factory` builds a store over a link (runtime/db/store_link.hpp) that the
// calling actor makes with db::make_store_link(self, db, timeout); completions run in that actor's
// context. In production reports_settings.store is empty and the PostgreSQL store is used over
// settings.db, settings.filings and settings.instanote. In a simulation set
// reports_settings.store = sim::memory_reports_store(server.handle, tables) (the server of
// tests/sim/memory_server.hpp carries the faults); db, filings and instanote may then stay null,
// and the tables' draft_jobs stand in for InstaNote's jobs.
//
// An error whose outcome_unknown() holds may or may not have been applied; every write is safe to
// repeat (filings and verdicts under their key, the saga's writes because every step is
// idempotent and a lost claim lapses).
#include <caf/optional.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "messages/context.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::reports {

using db::completion;

// One report of a filing batch, validated and checked by the reports actor; the notes are already
// Fernet tokens (the store never sees clinical text in the clear).
struct filing_row {
  report_submission sub;  // the notes in it are ignored: the tokens below are stored
  std::string bucket_type;
  caf::optional<std::string> additional_token, context_token;
  std::string note;  // the saga log's first line ("store")
};

// The answer for filing_row i of a batch, in the batch's order.
struct filed {
  // key_taken: its key was stored meanwhile by another request, and nothing of it was written.
  // unknown: the batch committed but this row's answer could not be read.
  enum kind : std::uint8_t { written, key_taken, unknown } outcome = unknown;
  std::int64_t id = 0;
  std::int64_t created_at_ms = 0;
};

// A report as stored: the notes as their tokens (the actor decrypts them), and its saga log when
// it was asked for.
struct stored_report {
  error_report report;  // fields.additional_notes and fields.context_notes empty
  caf::optional<std::string> additional_token, context_token;
};

// A report's status and weight as a verdict reads them, and ctx's key.
struct status_read {
  std::string status;
  double weight = 0;
  db::idempotency::lookup_result key;
};

struct status_write {
  std::int64_t id = 0;
  std::string old_status, new_status;
  double new_weight = 0;
  std::string log_note;  // the saga log's "status" line
};

enum class verdict_saved : std::uint8_t { done, status_moved, key_taken };

// Where a saga is, and what its steps need.
struct saga_position {
  std::string step;
  std::int64_t revision = 0;
  std::int32_t attempts = 0;
  pattern_record pattern;
};

// A step its target acknowledged: the row moves from `step` to `next` only if it is still at
// `revision` and `step` under the runner's claim; the log lines are written either way.
struct step_ack {
  std::int64_t id = 0;
  std::int64_t revision = 0;
  std::string step, next;
  std::vector<std::pair<std::string, std::string>> log;  // (step, note), in order
};

struct step_failure {
  std::int64_t id = 0;
  std::int64_t revision = 0;
  std::string step;
  std::string error;  // a bounded excerpt
  std::chrono::milliseconds retry_in{0};
  caf::optional<std::string> log_note;  // the first failure of a step goes into the log
};

// What the saga's steps need of a report: the pattern as it stands (the filing node hands it to
// the saga directly; a store's claim reads it back).
inline pattern_record pattern_of(const error_report& r) {
  pattern_record p;
  p.pattern_id = r.id;
  p.speaker_id = r.fields.speaker_id;
  p.client_id = r.fields.client_id;
  p.bucket_type = r.bucket_type;
  p.original_text = r.fields.original_text;
  p.corrected_text = r.fields.corrected_text;
  p.context_text = r.fields.context_text;
  p.error_categories = r.fields.error_categories;
  p.audio_quality = r.fields.audio_quality;
  p.speaker_clarity = r.fields.speaker_clarity;
  p.background_noise = r.fields.background_noise;
  p.number_of_speakers = r.fields.number_of_speakers;
  p.overlapping_speech = r.fields.overlapping_speech;
  p.requires_specialized_knowledge = r.fields.requires_specialized_knowledge;
  p.status = r.status;
  p.weight = r.weight;
  p.created_at_ms = r.created_at_ms;
  return p;
}

class store {
 public:
  virtual ~store() = default;

  // --- filings ---
  // The stored answer of ctx's key (younger than `retention`), its reuse, or absent.
  virtual void find_key(const request_context& ctx, std::chrono::seconds retention,
                        completion<db::idempotency::lookup_result> done) = 0;
  // Writes the batch in one commit: each report with its saga row at step index (claimed by
  // `claimant` for `claim`), its first log line and its key. One answer per row, in order.
  virtual void file(const std::vector<filing_row>& rows, std::chrono::milliseconds claim,
                    const std::string& claimant, const deadline& until, completion<std::vector<filed>> done) = 0;
  // InstaNote's job owners (job id -> speaker id) among `job_ids`; a job it does not have is
  // absent. Runs over InstaNote's database (the link the store was built on).
  virtual void job_owners(const std::vector<std::string>& job_ids,
                          completion<std::map<std::string, std::string>> done) = 0;

  // --- reads ---
  // The report with its saga position, and its saga log when `with_log`. nullopt: no such report.
  virtual void load(std::int64_t id, bool with_log, completion<caf::optional<stored_report>> done) = 0;
  // Newest first, at most `fetch`; every filter of q applies (q.limit and q.scope included).
  virtual void list(const report_query& q, std::uint32_t fetch, completion<std::vector<stored_report>> done) = 0;

  // --- verdicts ---
  // nullopt: no such report within `scope`. The key is looked up only for a keyed ctx.
  virtual void read_status(std::int64_t id, const client_scope& scope, const request_context& ctx,
                           std::chrono::seconds retention, completion<caf::optional<status_read>> done) = 0;
  // Sets the status and weight if the status is still old_status, rewinds the saga to index at a
  // new revision (unclaimed, due after `claim`), logs and stores ctx's key, in one commit.
  virtual void set_status(const status_write& w, std::chrono::milliseconds claim, const request_context& ctx,
                          completion<verdict_saved> done) = 0;
  // A session's verdicts in one commit, once per session id: each moves its report (of
  // v.speaker_id only) one tenth, clamped to [0, 1], in the order given; the touched sagas rewind
  // as set_status does. false: the session was applied before (nothing written now).
  virtual void apply_verdicts(const verification_verdicts& v, std::chrono::milliseconds claim,
                              completion<bool> done) = 0;
  // The weights of `ids` that are v.speaker_id's reports, by id.
  virtual void weights(const std::vector<std::int64_t>& ids, const std::string& speaker_id, const deadline& until,
                       completion<verdicts_applied> done) = 0;

  // --- the saga ---
  // Claims the saga (if unclaimed, claimant's, or lapsed, and not done) for `claim` and reads it.
  // nullopt: done, no such report, or another runner holds it.
  virtual void claim(std::int64_t id, std::chrono::milliseconds claim, const std::string& claimant,
                     completion<caf::optional<saga_position>> done) = 0;
  // Claims up to `limit` due sagas (oldest due first, skipping rows being claimed), answers ids.
  virtual void claim_due(std::chrono::milliseconds claim, std::uint32_t limit, const std::string& claimant,
                         completion<std::vector<std::int64_t>> done) = 0;
  // Records acknowledged steps (see step_ack); answers the ids that moved.
  virtual void record_steps(const std::vector<step_ack>& acks, std::chrono::milliseconds claim,
                            const std::string& claimant, completion<std::vector<std::int64_t>> done) = 0;
  // Counts a failed attempt and sets when to retry, under the same conditions as a step.
  virtual void record_failure(const step_failure& f, const std::string& claimant, completion<bool> done) = 0;
  // Forgets keys older than `retention`.
  virtual void purge_keys(std::chrono::seconds retention, completion<bool> done) = 0;
  // Clears the notes of up to `batch` reports older than `retention`; answers how many.
  virtual void purge_notes(std::chrono::milliseconds retention, std::uint32_t batch,
                           completion<std::uint32_t> done) = 0;
};

using store_factory = std::function<std::unique_ptr<store>(const db::store_link&)>;

std::unique_ptr<store> make_postgres_store(const db::store_link& link);

// The store an actor of the family uses: `make`'s (a simulation's) or PostgreSQL's over `db`,
// reached through the actor's own link so completions run in its context.
template <class Self>
std::unique_ptr<store> open_store(Self* self, const store_factory& make, postgres_actor db,
                                  std::chrono::milliseconds timeout) {
  auto link = db::make_store_link(self, std::move(db), timeout);
  return make ? make(link) : make_postgres_store(link);
}

}  // namespace sbm::reports
