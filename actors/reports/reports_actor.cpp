// The reports actor: validates a submission, checks it against the speakers family and InstaNote,
// encrypts the notes and commits the report with its saga row in one transaction, then hands the
// saga on. Reads decrypt the notes; a note that will not decrypt reads as "[Encrypted Data]".
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "actors/reports/core/fernet.hpp"
#include "actors/reports/report_rows.hpp"
#include "actors/reports/notes_retention.hpp"
#include "actors/reports/report_saga.hpp"
#include "actors/reports/reports.hpp"
#include "messages/errors.hpp"
#include "messages/speaker_locations.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/domain/vocabulary.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/resilience/time.hpp"

namespace sbm::reports {

namespace {

constexpr const char* unreadable_note = "[Encrypted Data]";
constexpr std::uint32_t max_page = 500;
// Group commit (see flush_stores): reports per statement, and statements running at once, which
// leaves the rest of the connection pool to the sagas and to reads.
constexpr std::size_t max_batch = 64;
constexpr int max_batches_in_flight = 2;
constexpr const char* keys_table = "reports.idempotency_keys";
// InstaNote's job checks, grouped the same way: jobs per statement, statements at once.
constexpr std::size_t max_job_batch = 64;
constexpr int max_job_checks_in_flight = 2;
// Speakers whose live activation a filing asks directly (one hop instead of two via the shard).
constexpr std::size_t speaker_locations_capacity = 4096;

struct filing;

struct reports_state {
  static inline const char* name = "sbm.reports";

  reports_settings settings;
  std::optional<fernet> cipher;
  std::optional<resilience::wall_clock> wall;  // the notes' token timestamps
  report_saga_actor saga;
  caf::actor retention;  // purges notes past reports.notes-retention; none when it is 0
  std::string claim;  // the saga runner's name, written into the saga rows this actor files
  std::deque<std::shared_ptr<filing>> store_queue;  // checked, waiting for a statement
  int batches_in_flight = 0;
  // Waiting for InstaNote's job check (each counts in `filings`, so max_queued bounds it too).
  std::deque<std::shared_ptr<filing>> job_queue;
  int job_checks_in_flight = 0;
  // Set while one job check's answer hands its filings on: they go to the store queue first and
  // are flushed together, so a group checked together is stored together too (flushed one by one,
  // the first two would take both statements alone and the rest wait for their commits).
  bool holding_stores = false;
  speaker_locations speakers_at{speaker_locations_capacity};
  std::size_t filings = 0;  // accepted for checking and not answered yet (bounded by max_queued)
  db::idempotency::keys_in_flight keys;  // of filings and verdicts being handled now
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = reports_actor::stateful_pointer<reports_state>;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

// Who filed or judged a report, as the gateway names principals ("user" or "service:<id>").
bool plausible_actor(const std::string& actor) {
  return !actor.empty() && actor.size() <= 256 && valid_utf8(actor);
}

// Decimal text that PostgreSQL parses back to the identical double.
std::string sql_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

report_receipt refusal(std::uint8_t outcome, std::string field, std::string reason) {
  report_receipt r;
  r.outcome = outcome;
  r.field = std::move(field);
  r.reason = std::move(reason);
  return r;
}

note_reader make_note_reader(self_ptr self) {
  return [self](const std::string& token, const char* field, std::int64_t id) -> std::string {
    auto plain = self->state.cipher->decrypt(token);
    if (plain) return std::move(*plain);
    // The token is not quoted: it is ciphertext of patient-adjacent notes and says nothing useful.
    self->state.log->error("report {}: {} does not decrypt with the configured key; read as {}", id,
                           field, unreadable_note);
    return unreadable_note;
  };
}

// --- filing -------------------------------------------------------------------------------------

// Everything known about a submission on its way to the database.
struct filing {
  report_submission sub;
  std::string bucket_type;
  std::string job_note;  // what InstaNote said about the job, for the saga log
  int pending = 2;       // the speaker lookup and the job check (and the key's lookup)
  std::optional<caf::expected<report_receipt>> replay;  // the key's stored answer, if any
  std::optional<report_receipt> speaker_refusal;
  std::optional<report_receipt> job_refusal;
  std::optional<caf::error> speaker_failure;
  std::optional<std::string> additional_token;  // Fernet tokens of the notes, once encrypted
  std::optional<std::string> context_token;
  // Answers the filer once and releases its place in the bounds and its key.
  std::function<void(caf::expected<report_receipt>)> answer;
};

using filing_ptr = std::shared_ptr<filing>;

// Filings committed together: each answered only after the statement that holds it committed.
void send_batch(self_ptr self, std::vector<filing_ptr> batch);

// Answers a keyed filing from its key's stored answer, or `otherwise` when nothing is stored.
void answer_from_key(self_ptr self, const filing_ptr& f, caf::error otherwise);

// Group commit: while max_batches_in_flight statements are running, newly checked reports wait
// and go in the next statement together, so under load many reports share one commit (each is
// still answered only after its commit) and a lone report goes out at once.
void flush_stores(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  while (st.batches_in_flight < max_batches_in_flight && !st.store_queue.empty()) {
    std::vector<filing_ptr> batch;
    while (!st.store_queue.empty() && batch.size() < max_batch) {
      auto f = std::move(st.store_queue.front());
      st.store_queue.pop_front();
      // Its filer stopped waiting while it queued: it is answered and never written.
      if (f->sub.ctx.until.passed(now))
        f->answer(deadline_passed());
      else
        batch.push_back(std::move(f));
    }
    if (!batch.empty()) send_batch(self, std::move(batch));
  }
}

void store(self_ptr self, const filing_ptr& f) {
  auto& st = self->state;
  const auto now = st.wall->unix_seconds(self->clock().now());
  try {
    if (!f->sub.additional_notes.empty())
      f->additional_token = st.cipher->encrypt(f->sub.additional_notes, now);
    if (!f->sub.context_notes.empty()) f->context_token = st.cipher->encrypt(f->sub.context_notes, now);
  } catch (const std::exception& ex) {
    f->answer(make_error(errc::internal, std::string("cannot encrypt the notes: ") + ex.what()));
    return;
  }
  st.store_queue.push_back(f);
  if (!st.holding_stores) flush_stores(self);
}

void committed(self_ptr self, const filing_ptr& f, std::int64_t id, std::int64_t created_at_ms) {
  report_receipt out;
  auto& r = out.report;
  r.id = id;
  r.created_at_ms = created_at_ms;
  r.updated_at_ms = created_at_ms;
  r.fields = std::move(f->sub);
  r.bucket_type = std::move(f->bucket_type);
  r.status = domain::pending_status;
  r.weight = 0.5;
  r.saga_step = std::string{to_string(saga_step::index)};
  pattern_record pattern;
  pattern.pattern_id = r.id;
  pattern.speaker_id = r.fields.speaker_id;
  pattern.client_id = r.fields.client_id;
  pattern.bucket_type = r.bucket_type;
  pattern.original_text = r.fields.original_text;
  pattern.corrected_text = r.fields.corrected_text;
  pattern.context_text = r.fields.context_text;
  pattern.error_categories = r.fields.error_categories;
  pattern.audio_quality = r.fields.audio_quality;
  pattern.speaker_clarity = r.fields.speaker_clarity;
  pattern.background_noise = r.fields.background_noise;
  pattern.number_of_speakers = r.fields.number_of_speakers;
  pattern.overlapping_speech = r.fields.overlapping_speech;
  pattern.requires_specialized_knowledge = r.fields.requires_specialized_knowledge;
  pattern.status = r.status;
  pattern.weight = r.weight;
  pattern.created_at_ms = r.created_at_ms;
  f->answer(std::move(out));
  self->send(self->state.saga, flush_atom::value, std::move(pattern));
}

void send_batch(self_ptr self, std::vector<filing_ptr> batch) {
  auto& st = self->state;
  std::string rows;
  try {
    nlohmann::json list = nlohmann::json::array();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& f = *batch[i];
      const auto& s = f.sub;
      auto token = [](const std::optional<std::string>& t) {
        return t ? nlohmann::json(*t) : nlohmann::json(nullptr);
      };
      // In filing_batch_sql's order (report_rows.hpp).
      list.push_back(nlohmann::json::array(
        {i, s.speaker_id, s.client_id, s.job_id, s.original_text, s.corrected_text, s.context_text,
         s.error_categories, f.bucket_type, s.audio_quality, s.speaker_clarity, s.background_noise,
         s.number_of_speakers, s.overlapping_speech, s.requires_specialized_knowledge,
         token(f.additional_token), token(f.context_token), s.actor,
         "stored, speaker in " + f.bucket_type + "; " + f.job_note, s.ctx.principal,
         s.ctx.keyed() ? nlohmann::json(s.ctx.idempotency_key) : nlohmann::json(nullptr),
         s.ctx.request_digest}));
    }
    rows = list.dump();
  } catch (const std::exception& ex) {
    // Validation lets only valid UTF-8 through, so this is a bug, not a client's mistake.
    for (auto& f : batch) f->answer(make_error(errc::internal, std::string("cannot encode: ") + ex.what()));
    flush_stores(self);
    return;
  }
  ++st.batches_in_flight;
  db_statement stmt{filing_batch_sql,
                    {std::move(rows), std::to_string(st.settings.claim.count()), st.claim},
                    -1};
  // The batch's deadline is its most patient member's: each was checked against its own before.
  for (const auto& f : batch)
    if (!f->sub.ctx.until.set() || f->sub.ctx.until.at_ns > stmt.until.at_ns)
      stmt.until = f->sub.ctx.until.set() ? f->sub.ctx.until : deadline{};
  if (std::any_of(batch.begin(), batch.end(),
                  [](const filing_ptr& f) { return !f->sub.ctx.until.set(); }))
    stmt.until = deadline{};
  auto shared = std::make_shared<std::vector<filing_ptr>>(std::move(batch));
  self->request(st.settings.filings, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, shared](db_rows& res) {
        --self->state.batches_in_flight;
        auto& batch = *shared;
        std::vector<bool> answered(batch.size(), false);
        for (const auto& row : res.rows) {
          try {
            const auto ord = static_cast<std::size_t>(int_column(row, 0));
            if (ord >= batch.size() || answered[ord]) throw std::runtime_error("unexpected row");
            answered[ord] = true;
            if (bool_column(row, 3))
              committed(self, batch[ord], int_column(row, 1), int_column(row, 2));
            else
              // Its key was stored meanwhile by another request (another node): nothing of this
              // one was written, and the key's stored answer is the filer's.
              answer_from_key(self, batch[ord], make_error(errc::internal, "the filing conflicted"));
          } catch (const std::exception& ex) {
            self->state.log->error("unreadable insert result: {}", ex.what());
          }
        }
        // Committed, but the answer was lost: say so rather than claim a failure.
        for (std::size_t i = 0; i < batch.size(); ++i)
          if (!answered[i])
            batch[i]->answer(make_error(errc::outcome_unknown, "stored, but the id could not be read"));
        flush_stores(self);
      },
      [self, shared](caf::error& e) {
        --self->state.batches_in_flight;
        auto& batch = *shared;
        // One bad row fails the whole statement: file each again on its own, so only that one
        // fails. (A key stored meanwhile is no failure: the statement skips that row.) A
        // dependency failure fails them all (a statement dropped for its deadline wrote nothing);
        // a timeout leaves each one's outcome unknown (their keys settle it on retry).
        if (batch.size() > 1 &&
            (code_of(e) == errc::invalid_argument || code_of(e) == errc::conflict)) {
          for (auto& f : batch) send_batch(self, {f});
        } else if (outcome_unknown(e)) {
          for (auto& f : batch)
            f->answer(make_error(errc::outcome_unknown,
                                 "the report may or may not have been stored"));
        } else {
          for (auto& f : batch) f->answer(db::failure(e));
        }
        flush_stores(self);
      });
}

// The speaker lookup and InstaNote's job check run at once; the filing goes on when both answered.
// A refusal about the speaker wins over one about the job, whichever came first.
void joined(self_ptr self, const filing_ptr& f) {
  if (--f->pending > 0) return;
  // A retry of a filing that committed answers what it answered, whatever the checks say now.
  if (f->replay) {
    auto replay = std::move(*f->replay);
    f->replay.reset();
    f->answer(std::move(replay));
    return;
  }
  if (f->speaker_failure) {
    f->answer(std::move(*f->speaker_failure));
    return;
  }
  if (f->speaker_refusal) {
    f->answer(std::move(*f->speaker_refusal));
    return;
  }
  if (f->job_refusal) {
    f->answer(std::move(*f->job_refusal));
    return;
  }
  if (f->sub.ctx.until.passed(self->clock().now())) {
    f->answer(deadline_passed());
    return;
  }
  store(self, f);
}

void check_speaker(self_ptr self, const filing_ptr& f) {
  auto& st = self->state;
  read_speaker(
    self, st.speakers_at, st.settings.speakers, f->sub.speaker_id,
    caf::duration{st.settings.lookup_timeout},
    [self, f](speaker_view& v) {
      if (v.client_id != f->sub.client_id)
        f->speaker_refusal = refusal(report_receipt::unprocessable, "client_id",
                                     "field 'client_id' is not the client the speaker is registered with");
      else
        f->bucket_type = v.bucket;
      joined(self, f);
    },
    [self, f](caf::error& e) {
      if (code_of(e) == errc::not_found)
        f->speaker_refusal = refusal(report_receipt::unprocessable, "speaker_id",
                                     "field 'speaker_id' names no registered speaker");
      else if (e.category() == error_category)
        f->speaker_failure = e;
      else
        // Without the speaker's bucket the report cannot be stored as SPEC defines it.
        f->speaker_failure = make_error(errc::unavailable, "the speakers shard did not answer: " +
                                                             self->system().render(e));
      joined(self, f);
    });
}

// What InstaNote's answer (the job's speaker, or nothing) means for one filing.
void judge_job(const filing_ptr& f, const std::optional<std::string>& owner) {
  if (!owner)
    f->job_note = "InstaNote has no such job; ownership not checked";
  else if (*owner != f->sub.speaker_id)
    f->job_refusal = refusal(report_receipt::unprocessable, "job_id",
                             "field 'job_id' names a job of another speaker in InstaNote");
  else
    f->job_note = "InstaNote confirms the job is the speaker's";
}

// Job checks are grouped as stores are (flush_stores): while max_job_checks_in_flight statements
// run, new checks wait and go in the next one together, so under load many filings share one
// SELECT and a lone filing asks at once.
void flush_job_checks(self_ptr self) {
  auto& st = self->state;
  while (st.job_checks_in_flight < max_job_checks_in_flight && !st.job_queue.empty()) {
    auto batch = std::make_shared<std::vector<filing_ptr>>();
    nlohmann::json jobs = nlohmann::json::array();
    while (!st.job_queue.empty() && batch->size() < max_job_batch) {
      batch->push_back(std::move(st.job_queue.front()));
      st.job_queue.pop_front();
      jobs.push_back(batch->back()->sub.job_id);
    }
    ++st.job_checks_in_flight;
    // Replacing never fires (job ids are validated UTF-8); it only keeps dump() from throwing.
    auto ids = jobs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    self->request(st.settings.instanote, st.settings.lookup_timeout, query_atom::value,
                  db_statement{job_owners_sql, {std::move(ids)}, -1})
      .then(
        [self, batch](db_rows& rows) {
          --self->state.job_checks_in_flight;
          std::unordered_map<std::string, std::string> owners;
          for (const auto& row : rows.rows)
            if (row.size() == 2 && row[0] && row[1]) owners.emplace(*row[0], *row[1]);
          self->state.holding_stores = true;
          for (auto& f : *batch) {
            auto it = owners.find(f->sub.job_id);
            judge_job(f, it == owners.end() ? std::nullopt : std::optional<std::string>{it->second});
            joined(self, f);
          }
          self->state.holding_stores = false;
          flush_stores(self);
          flush_job_checks(self);
        },
        [self, batch](caf::error& e) {
          --self->state.job_checks_in_flight;
          const auto note = "InstaNote could not tell (" + self->system().render(e) +
                            "); ownership not checked";
          self->state.holding_stores = true;
          for (auto& f : *batch) {
            f->job_note = note;
            joined(self, f);
          }
          self->state.holding_stores = false;
          flush_stores(self);
          flush_job_checks(self);
        });
  }
}

// InstaNote is outside SBM and may be down; when it cannot tell, the report is accepted and the
// saga log says the job was not checked.
void check_job(self_ptr self, const filing_ptr& f) {
  auto& st = self->state;
  if (!st.settings.instanote) {
    f->job_note = "job ownership not checked: no InstaNote connection";
    joined(self, f);
    return;
  }
  st.job_queue.push_back(f);
  flush_job_checks(self);
}

const std::string select_report =
  std::string("SELECT ") + report_columns +
  " FROM reports.error_reports r LEFT JOIN reports.report_saga s ON s.report_id = r.id";
const std::string select_report_by_id = select_report + " WHERE r.id = $1";

// The receipt a filing answered, rebuilt from its row: the row's fields never change after filing,
// and the state every report starts in is the same, so this is exactly what the filer was told.
void replay_filing(self_ptr self, const std::string& stored_id,
                   std::function<void(caf::expected<report_receipt>)> done) {
  auto& st = self->state;
  self->request(st.settings.filings, st.settings.db_timeout, query_atom::value,
                db_statement{select_report_by_id, {stored_id}, -1})
    .then(
      [self, done](db_rows& rows) {
        if (rows.rows.empty()) {
          done(make_error(errc::internal, "the key's report is gone"));
          return;
        }
        try {
          report_receipt out;
          out.report = report_from_row(rows.rows.front(), make_note_reader(self));
          auto& r = out.report;
          r.status = domain::pending_status;
          r.weight = 0.5;
          r.updated_at_ms = r.created_at_ms;
          r.saga_step = std::string{to_string(saga_step::index)};
          r.saga_attempts = 0;
          r.saga_last_error.clear();
          done(std::move(out));
        } catch (const std::exception& ex) {
          done(make_error(errc::internal, std::string("corrupt report row: ") + ex.what()));
        }
      },
      [done](caf::error& e) { done(db::failure(e)); });
}

// Looks the key up, then calls `done` with nothing (absent) or the answer to give.
void lookup_key(self_ptr self, const request_context& ctx,
                std::function<void(std::optional<caf::expected<report_receipt>>)> done) {
  auto& st = self->state;
  self->request(st.settings.filings, st.settings.db_timeout, query_atom::value,
                db::idempotency::lookup(keys_table, ctx, st.settings.idempotency_retention))
    .then(
      [self, ctx, done](db_rows& rows) {
        db::idempotency::lookup_result found;
        try {
          found = db::idempotency::judge(rows, ctx);
        } catch (const std::exception& ex) {
          done(caf::expected<report_receipt>{
            make_error(errc::internal, std::string("unreadable stored answer: ") + ex.what())});
          return;
        }
        switch (found.v) {
          case db::idempotency::verdict::absent: done(std::nullopt); return;
          case db::idempotency::verdict::reused:
            done(caf::expected<report_receipt>{db::idempotency::reused(ctx)});
            return;
          case db::idempotency::verdict::replay:
            if (found.stored.outcome != 0) {
              done(caf::expected<report_receipt>{db::idempotency::refusal_of(found.stored)});
              return;
            }
            replay_filing(self, found.stored.answer,
                          [done](caf::expected<report_receipt> r) { done(std::move(r)); });
            return;
        }
      },
      [done](caf::error& e) {
        // Nothing was written by this attempt; whether an earlier one was cannot be told now.
        done(caf::expected<report_receipt>{make_error(
          errc::unavailable, "the Idempotency-Key could not be checked: " + detail_of(db::failure(e)))});
      });
}

void check_key(self_ptr self, const filing_ptr& f) {
  lookup_key(self, f->sub.ctx, [self, f](std::optional<caf::expected<report_receipt>> found) {
    if (found) f->replay = std::move(*found);
    joined(self, f);
  });
}

void answer_from_key(self_ptr self, const filing_ptr& f, caf::error otherwise) {
  lookup_key(self, f->sub.ctx,
             [f, otherwise](std::optional<caf::expected<report_receipt>> found) {
               if (found)
                 f->answer(std::move(*found));
               else
                 f->answer(otherwise);
             });
}

caf::result<report_receipt> on_file(self_ptr self, report_submission sub) {
  auto& st = self->state;
  if (auto problem = check_report(sub, st.settings.limits))
    return refusal(problem->unprocessable ? report_receipt::unprocessable : report_receipt::malformed,
                   problem->field, problem->reason);
  if (!plausible_actor(sub.actor)) return invalid("actor must be 1..256 bytes");
  if (!sub.ctx.scope.admits(sub.client_id))
    return refusal(report_receipt::unprocessable, "client_id",
                   "field 'client_id' is not one of the clients you may act for");
  if (sub.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (st.filings >= st.settings.max_queued)
    return make_error(errc::overloaded,
                      std::to_string(st.filings) + " report filings are waiting already",
                      std::chrono::seconds{1});
  std::string key;
  if (auto busy = st.keys.claim(sub.ctx, key)) return *busy;
  ++st.filings;
  auto rp = self->make_response_promise<report_receipt>();
  auto f = std::make_shared<filing>();
  f->answer = [self, rp, key, answered = false](caf::expected<report_receipt> r) mutable {
    if (answered) return;
    answered = true;
    --self->state.filings;
    self->state.keys.release(key);
    if (r)
      rp.deliver(std::move(*r));
    else
      rp.deliver(std::move(r.error()));
  };
  f->sub = std::move(sub);
  if (f->sub.ctx.keyed()) {
    f->pending = 3;
    check_key(self, f);
  }
  check_speaker(self, f);
  check_job(self, f);
  return rp;
}

// --- reading ------------------------------------------------------------------------------------

caf::result<error_report> on_get(self_ptr self, std::int64_t id) {
  if (id <= 0) return invalid("id must be a positive integer");
  auto& st = self->state;
  db_transaction tx;
  tx.statements.push_back({select_report_by_id, {std::to_string(id)}, -1});
  tx.statements.push_back({std::string("SELECT ") + log_columns +
                             " FROM reports.saga_log WHERE report_id = $1 ORDER BY id",
                           {std::to_string(id)},
                           -1});
  auto rp = self->make_response_promise<error_report>();
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then(
      [self, rp, id](db_results& res) mutable {
        if (res.results.size() < 2 || res.results[0].rows.empty()) {
          rp.deliver(make_error(errc::not_found, "no error report " + std::to_string(id)));
          return;
        }
        try {
          auto report = report_from_row(res.results[0].rows.front(), make_note_reader(self));
          for (const auto& row : res.results[1].rows) report.saga_log.push_back(log_entry_from_row(row));
          rp.deliver(std::move(report));
        } catch (const std::exception& ex) {
          rp.deliver(make_error(errc::internal, std::string("corrupt report row: ") + ex.what()));
        }
      },
      [self, rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

caf::result<report_page> on_list(self_ptr self, const report_query& q) {
  auto& st = self->state;
  caf::optional<std::string> speaker, status, category, from, to, before;
  if (!q.speaker_id.empty()) {
    if (auto why = id_problem(q.speaker_id)) return invalid("speaker_id " + *why);
    speaker = q.speaker_id;
  }
  if (!q.status.empty()) {
    if (!is_one_of(report_statuses, q.status))
      return invalid("status must be " + choices_text(report_statuses));
    status = q.status;
  }
  if (!q.category.empty()) {
    if (!is_one_of(error_categories, q.category))
      return invalid("category must be " + choices_text(error_categories));
    category = q.category;
  }
  if (q.from_ms != 0) from = std::to_string(q.from_ms);
  if (q.to_ms != 0) to = std::to_string(q.to_ms);
  if (q.before_id < 0) return invalid("cursor must be a positive report id");
  if (q.before_id > 0) before = std::to_string(q.before_id);
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  // Every filter is a bound parameter; "$n IS NULL OR ..." keeps one statement for all of them.
  db_statement stmt{select_report +
                      " WHERE ($1::text IS NULL OR r.speaker_id = $1) "
                      "AND ($2::text IS NULL OR r.status = $2) "
                      "AND ($3::text IS NULL OR r.error_categories @> ARRAY[$3::text]) "
                      // Integer microsecond arithmetic: no float rounding at the bounds.
                      "AND ($4::bigint IS NULL OR r.created_at >= "
                      "'epoch'::timestamptz + $4::bigint * interval '1 millisecond') "
                      "AND ($5::bigint IS NULL OR r.created_at < "
                      "'epoch'::timestamptz + ($5::bigint + 1) * interval '1 millisecond') "
                      "AND ($6::bigint IS NULL OR r.id < $6::bigint) "
                      "AND " + db::scope_clause("r.client_id", 8) +
                      " ORDER BY r.id DESC LIMIT $7",
                    {speaker, status, category, from, to, before, std::to_string(limit + 1),
                     db::scope_param(q.scope)},
                    -1};
  auto rp = self->make_response_promise<report_page>();
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, rp, limit](db_rows& rows) mutable {
        report_page page;
        try {
          auto reader = make_note_reader(self);
          for (const auto& row : rows.rows) {
            if (page.items.size() == limit) {
              page.next_before_id = page.items.back().id;
              break;
            }
            page.items.push_back(report_from_row(row, reader));
          }
        } catch (const std::exception& ex) {
          rp.deliver(make_error(errc::internal, std::string("corrupt report row: ") + ex.what()));
          return;
        }
        rp.deliver(std::move(page));
      },
      [self, rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

// --- status -------------------------------------------------------------------------------------

// The verdict is stored and the saga rewound to its index step in one transaction, so the
// pattern's status and weight follow even if the node stops right after the commit.
// The verdict is stored and the saga rewound to its index step in one transaction, so the
// pattern's status and weight follow even if the node stops right after the commit. A keyed
// verdict stores its key in that transaction; its replay answers the report as it is now (a status
// change is the report's state, and setting it again changes nothing).
caf::result<error_report> on_update(self_ptr self, report_status_change change) {
  auto& st = self->state;
  if (change.id <= 0) return invalid("id must be a positive integer");
  if (!domain::is_one_of(domain::verdicts, change.status))
    return invalid("field 'status' must be " + domain::choices_text(domain::verdicts));
  if (!plausible_actor(change.actor)) return invalid("actor must be 1..256 bytes");
  if (change.ctx.until.passed(self->clock().now())) return deadline_passed();
  std::string key;
  if (auto busy = st.keys.claim(change.ctx, key)) return *busy;
  auto promise = self->make_response_promise<error_report>();
  auto release = [self, key] { self->state.keys.release(key); };
  auto deliver = [promise, release](caf::error e) mutable {
    release();
    promise.deliver(std::move(e));
  };
  auto answer_now = [self, promise, release, id = change.id]() mutable {
    release();
    promise.delegate(caf::actor_cast<reports_actor>(self), get_atom::value, id);
  };
  db_transaction read;
  read.until = change.ctx.until;
  read.statements.push_back(
    // A report of a client the caller may not reach reads as missing (its existence is not told).
    {"SELECT status, weight FROM reports.error_reports WHERE id = $1 AND " +
       db::scope_clause("client_id", 2),
     {std::to_string(change.id), db::scope_param(change.ctx.scope)}, -1});
  if (change.ctx.keyed())
    read.statements.push_back(db::idempotency::lookup(keys_table, change.ctx,
                                                      st.settings.idempotency_retention));
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(read))
    .then(
      [self, change, deliver, answer_now](db_results& res) mutable {
        auto& st = self->state;
        if (res.results.empty() || res.results[0].rows.empty()) {
          deliver(make_error(errc::not_found, "no error report " + std::to_string(change.id)));
          return;
        }
        std::string old_status;
        double weight = 0;
        try {
          if (change.ctx.keyed() && res.results.size() > 1) {
            auto found = db::idempotency::judge(res.results[1], change.ctx);
            if (found.v == db::idempotency::verdict::reused) {
              deliver(db::idempotency::reused(change.ctx));
              return;
            }
            if (found.v == db::idempotency::verdict::replay) {
              answer_now();
              return;
            }
          }
          old_status = text_column(res.results[0].rows.front(), 0);
          weight = double_column(res.results[0].rows.front(), 1);
        } catch (const std::exception& ex) {
          deliver(make_error(errc::internal, std::string("corrupt report row: ") + ex.what()));
          return;
        }
        if (old_status == change.status) {
          // Nothing changes: answer with the report as it is, without re-running the saga.
          answer_now();
          return;
        }
        const double new_weight = weight_after(old_status, change.status, weight);
        const auto id = std::to_string(change.id);
        db_transaction tx;
        tx.until = change.ctx.until;
        // Conditional on the status read above: two verdicts racing cannot both apply their
        // weight change to the same starting point.
        tx.statements.push_back({"UPDATE reports.error_reports SET status = $2, weight = $3::double precision, "
                                 "updated_at = now() WHERE id = $1 AND status = $4",
                                 {id, change.status, sql_number(new_weight), old_status},
                                 1});
        tx.statements.push_back(
          {"UPDATE reports.report_saga SET step = 'index', revision = revision + 1, attempts = 0, "
           "last_error = NULL, completed_at = NULL, updated_at = now(), claim = NULL, "
           "next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) "
           "WHERE report_id = $1",
           {id, std::to_string(st.settings.claim.count())},
           1});
        tx.statements.push_back({"INSERT INTO reports.saga_log (report_id, step, note) VALUES ($1, 'status', $2)",
                                 {id, "status " + old_status + " -> " + change.status + " by " +
                                        change.actor + "; the pattern is indexed again"},
                                 1});
        const auto key_statement = static_cast<std::int32_t>(tx.statements.size());
        if (change.ctx.keyed())
          tx.statements.push_back(db::idempotency::store_text(keys_table, change.ctx, 0, id));
        self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
          .then(
            [self, change, answer_now](db_results&) mutable {
              self->send(self->state.saga, flush_atom::value, change.id);
              answer_now();
            },
            [deliver, answer_now, key_statement](caf::error& e) mutable {
              if (code_of(e) == errc::conflict && info_of(e).statement == key_statement) {
                answer_now();  // the same request committed meanwhile (another node)
                return;
              }
              if (code_of(e) == errc::conflict) {
                deliver(make_error(errc::conflict,
                                   "the report's status changed meanwhile; read it and retry"));
                return;
              }
              if (outcome_unknown(e)) {
                deliver(make_error(errc::outcome_unknown,
                                   "the verdict may or may not have been saved"));
                return;
              }
              deliver(db::failure(e));
            });
      },
      [deliver](caf::error& e) mutable { deliver(db::failure(e)); });
  return promise;
}

// --- a verification session's verdicts -----------------------------------------------------------

// One transaction: the session is recorded (a second time conflicts, and then only the weights are
// read back), each verdict moves its report one tenth in the order given, each touched report's
// saga is rewound to re-index the pattern. The weight is read as integer tenths at every step, so
// repeated steps never drift and a clamp at 0 or 1 costs exactly that step.
caf::result<verdicts_applied> on_verdicts(self_ptr self, verification_verdicts v) {
  auto& st = self->state;
  if (v.session_id <= 0) return invalid("session_id must be a positive integer");
  if (v.speaker_id.empty()) return invalid("speaker_id is required");
  if (!plausible_actor(v.actor)) return invalid("actor must be 1..256 bytes");
  for (const auto& x : v.verdicts)
    if (x.report_id <= 0 || !domain::is_one_of(domain::verdicts, x.verdict))
      return invalid("each verdict names a report id and " + domain::choices_text(domain::verdicts));
  if (v.ctx.until.passed(self->clock().now())) return deadline_passed();
  std::string ids = "{";
  std::vector<std::int64_t> distinct;
  for (const auto& x : v.verdicts)
    if (std::find(distinct.begin(), distinct.end(), x.report_id) == distinct.end())
      distinct.push_back(x.report_id);
  for (std::size_t i = 0; i < distinct.size(); ++i)
    ids += (i ? "," : "") + std::to_string(distinct[i]);
  ids += "}";
  const auto session = std::to_string(v.session_id);
  db_transaction tx;
  tx.until = v.ctx.until;
  tx.statements.push_back({"INSERT INTO reports.session_verdicts (session_id, speaker_id, verdicts) "
                           "VALUES ($1, $2, $3)",
                           {session, v.speaker_id, std::to_string(v.verdicts.size())},
                           -1});
  for (const auto& x : v.verdicts)
    tx.statements.push_back(
      {"UPDATE reports.error_reports SET weight = greatest(0, least(10, round(weight * 10)::int + $2::int)) "
       "::double precision / 10, status = $3, updated_at = now() WHERE id = $1 AND speaker_id = $4",
       {std::to_string(x.report_id), x.verdict == domain::verdicts[0] ? "1" : "-1", x.verdict, v.speaker_id},
       -1});
  if (!distinct.empty()) {
    tx.statements.push_back(
      {"UPDATE reports.report_saga SET step = 'index', revision = revision + 1, attempts = 0, "
       "last_error = NULL, completed_at = NULL, updated_at = now(), claim = NULL, "
       "next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) "
       "WHERE report_id = ANY($1::bigint[]) AND report_id IN "
       "(SELECT id FROM reports.error_reports WHERE speaker_id = $3)",
       {ids, std::to_string(st.settings.claim.count()), v.speaker_id},
       -1});
    tx.statements.push_back(
      {"INSERT INTO reports.saga_log (report_id, step, note) SELECT id, 'status', "
       "'verification session ' || $2 || ' by ' || $3 || ': now ' || status || ', weight ' || weight "
       "FROM reports.error_reports WHERE id = ANY($1::bigint[]) AND speaker_id = $4",
       {ids, session, v.actor, v.speaker_id},
       -1});
  }
  auto promise = self->make_response_promise<verdicts_applied>();
  auto read_back = [self, promise, ids, speaker = v.speaker_id, until = v.ctx.until,
                    distinct](bool flush) mutable {
    if (flush)
      for (auto id : distinct) self->send(self->state.saga, flush_atom::value, id);
    db_statement q{"SELECT id, status, weight FROM reports.error_reports "
                   "WHERE id = ANY($1::bigint[]) AND speaker_id = $2 ORDER BY id",
                   {ids, speaker}, -1, until};
    self->request(self->state.settings.db, self->state.settings.db_timeout, query_atom::value, std::move(q))
      .then(
        [promise](db_rows& rows) mutable {
          verdicts_applied out;
          try {
            for (const auto& row : rows.rows)
              out.weights.push_back({int_column(row, 0), text_column(row, 1), double_column(row, 2)});
          } catch (const std::exception& ex) {
            promise.deliver(make_error(errc::internal, std::string("corrupt report row: ") + ex.what()));
            return;
          }
          promise.deliver(std::move(out));
        },
        [promise](caf::error& e) mutable { promise.deliver(db::failure(e)); });
  };
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then([read_back](db_results&) mutable { read_back(true); },
          [promise, read_back](caf::error& e) mutable {
            // The session's verdicts were applied before (the first statement's key): a retry.
            if (code_of(e) == errc::duplicate || (code_of(e) == errc::conflict && info_of(e).statement == 0)) {
              read_back(false);
              return;
            }
            if (outcome_unknown(e)) {
              promise.deliver(make_error(errc::outcome_unknown, "the verdicts may or may not have been saved"));
              return;
            }
            promise.deliver(db::failure(e));
          });
  return promise;
}

reports_actor::behavior_type reports_fn(self_ptr self, reports_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  if (!st.settings.filings) st.settings.filings = st.settings.db;
  st.cipher = fernet::from_key(st.settings.fernet_key);
  st.wall.emplace(self->clock().now());
  st.log = log::get("reports");
  // Random per start: a restarted runner is a new claimant, and its predecessor's claims lapse.
  std::random_device entropy;
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "saga-%08x%08x%08x", entropy(), entropy(), entropy());
  st.claim = buffer;
  st.saga = spawn_report_saga(self->system(), st.settings, st.claim);
  // Linked both ways: the saga stops with this actor, and a saga that fails takes this actor down
  // so that its supervisor restarts the pair.
  self->link_to(st.saga);
  st.retention = spawn_notes_retention(self->system(), st.settings);
  if (st.retention)
    self->link_to(st.retention);
  return {
    [self](file_atom, report_submission& sub) { return on_file(self, std::move(sub)); },
    [self](get_atom, std::int64_t id) { return on_get(self, id); },
    [self](list_atom, const report_query& q) { return on_list(self, q); },
    [self](update_atom, report_status_change& change) { return on_update(self, std::move(change)); },
    [self](verify_atom, verification_verdicts& v) { return on_verdicts(self, std::move(v)); },
    // Its own queue, and its saga runner's (a child: asked here, so a scrape asks one actor).
    [self](metrics_atom) -> caf::result<component_metrics> {
      auto& st = self->state;
      component_metrics m;
      m.component = "reports";
      m.queues.push_back({"reports.queued", "reports.max-queued", st.filings, st.settings.max_queued});
      auto rp = self->make_response_promise<component_metrics>();
      // It answers from memory; a scrape waits at most metrics.component-timeout for this actor.
      self->request(st.saga, std::chrono::milliseconds{500}, metrics_atom::value)
        .then(
          [rp, m](component_metrics& saga) mutable {
            for (auto& s : saga.samples) m.samples.push_back(std::move(s));
            for (auto& q : saga.queues) m.queues.push_back(std::move(q));
            rp.deliver(std::move(m));
          },
          [rp, m](caf::error&) mutable { rp.deliver(std::move(m)); });
      return rp;
    },
  };
}

}  // namespace

reports_actor spawn_reports(caf::actor_system& sys, reports_settings settings) {
  if (!settings.db) throw std::invalid_argument("reports: no PostgreSQL actor");
  if (!settings.speakers) throw std::invalid_argument("reports: no speakers shard");
  if (!fernet::from_key(settings.fernet_key))
    throw std::invalid_argument("reports: the Fernet key is not base64url of 32 bytes");
  if (settings.db_timeout.count() <= 0 || settings.lookup_timeout.count() <= 0 ||
      settings.step_timeout.count() <= 0 || settings.relay_interval.count() <= 0 ||
      settings.claim.count() <= 0 || settings.step_delay.count() < 0 || settings.max_running == 0)
    throw std::invalid_argument("reports: timeouts, intervals and max_running must be positive");
  if (settings.notes_retention.count() < 0 ||
      (settings.notes_retention.count() > 0 &&
       (settings.notes_purge_interval.count() <= 0 || settings.notes_purge_batch == 0)))
    throw std::invalid_argument("reports: a notes retention needs a positive purge interval and batch");
  return sys.spawn(reports_fn, std::move(settings));
}

}  // namespace sbm::reports
