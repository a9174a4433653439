// The reports actor: validates a submission, checks it against the speakers family and InstaNote,
// encrypts the notes and commits the report with its saga row in one transaction, then hands the
// saga on. Reads decrypt the notes; a note that will not decrypt reads as "[Encrypted Data]".
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
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
#include "actors/reports/store.hpp"
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
// Group commit (see flush_stores): reports per statement; settings.filing_batches run at once.
constexpr std::size_t max_batch = 64;
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
  std::uint32_t batches_in_flight = 0;
  // Waiting for InstaNote's job check (each counts in `filings`, so max_queued bounds it too).
  std::deque<std::shared_ptr<filing>> job_queue;
  int job_checks_in_flight = 0;
  // Set while one job check's answer hands its filings on: they go to the store queue first and
  // are flushed together, so a group checked together is stored together too (flushed one by one,
  // the first two would take both statements alone and the rest wait for their commits).
  bool holding_stores = false;
  speaker_locations speakers_at{speaker_locations_capacity};
  // The family's port (store.hpp), once per database: reads, verdicts and the sagas' statements
  // on settings.db, filings and their keys on settings.filings, job checks on InstaNote's.
  std::unique_ptr<store> db, filings_db, jobs;
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

report_receipt refusal(std::uint8_t outcome, std::string field, std::string reason) {
  report_receipt r;
  r.outcome = outcome;
  r.field = std::move(field);
  r.reason = std::move(reason);
  return r;
}

// A stored Fernet token (never empty) as its note; one that fails to decrypt reads as
// unreadable_note.
std::string read_note(self_ptr self, const std::string& token, const char* field, std::int64_t id) {
  auto plain = self->state.cipher->decrypt(token);
  if (plain) return std::move(*plain);
  // The token is not quoted: it is ciphertext of patient-adjacent notes and says nothing useful.
  self->state.log->error("report {}: {} does not decrypt with the configured key; read as {}", id,
                         field, unreadable_note);
  return unreadable_note;
}

// The report as its reader sees it: the notes decrypted. An empty token is not a Fernet token,
// so it goes to the reader (and fails).
error_report with_notes(self_ptr self, stored_report s) {
  auto& r = s.report;
  if (s.additional_token) r.fields.additional_notes = read_note(self, *s.additional_token, "additional_notes", r.id);
  if (s.context_token) r.fields.context_notes = read_note(self, *s.context_token, "context_notes", r.id);
  return std::move(r);
}

// --- filing -------------------------------------------------------------------------------------

// Everything known about a submission on its way to the database.
struct filing {
  report_submission sub;
  std::string bucket_type;
  std::string job_note;  // what InstaNote said about the job, for the saga log
  int pending = 3;       // the speaker lookup, the job check, the notes' encryption (and the key's lookup)
  std::optional<caf::expected<report_receipt>> replay;  // the key's stored answer, if any
  std::optional<report_receipt> speaker_refusal;
  std::optional<report_receipt> job_refusal;
  std::optional<caf::error> speaker_failure;
  std::optional<caf::error> encrypt_failure;
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

// Group commit: while settings.filing_batches statements are running, newly checked reports wait
// and go in the next statement together, so under load many reports share one commit (each is
// still answered only after its commit) and a lone report goes out at once.
void flush_stores(self_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  while (st.batches_in_flight < st.settings.filing_batches && !st.store_queue.empty()) {
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
  auto pattern = pattern_of(r);
  f->answer(std::move(out));
  self->send(self->state.saga, flush_atom::value, std::move(pattern));
}

void send_batch(self_ptr self, std::vector<filing_ptr> batch) {
  auto& st = self->state;
  std::vector<filing_row> rows;
  rows.reserve(batch.size());
  for (const auto& f : batch)
    rows.push_back({f->sub, f->bucket_type, f->additional_token ? caf::optional<std::string>{*f->additional_token} : caf::none,
                    f->context_token ? caf::optional<std::string>{*f->context_token} : caf::none,
                    "stored, speaker in " + f->bucket_type + "; " + f->job_note});
  ++st.batches_in_flight;
  // The batch's deadline is its most patient member's: each was checked against its own before.
  deadline until;
  for (const auto& f : batch)
    if (!f->sub.ctx.until.set() || f->sub.ctx.until.at_ns > until.at_ns)
      until = f->sub.ctx.until.set() ? f->sub.ctx.until : deadline{};
  if (std::any_of(batch.begin(), batch.end(),
                  [](const filing_ptr& f) { return !f->sub.ctx.until.set(); }))
    until = deadline{};
  auto shared = std::make_shared<std::vector<filing_ptr>>(std::move(batch));
  st.filings_db->file(rows, st.settings.claim, st.claim, until, [self, shared](caf::expected<std::vector<filed>> res) {
    --self->state.batches_in_flight;
    auto& batch = *shared;
    if (!res) {
      auto& e = res.error();
      // One bad row fails the whole statement: file each again on its own, so only that one
      // fails. (A key stored meanwhile is no failure: the statement skips that row.) A
      // dependency failure fails them all (a statement dropped for its deadline wrote nothing);
      // a timeout leaves each one's outcome unknown (their keys settle it on retry).
      if (batch.size() > 1 && (code_of(e) == errc::invalid_argument || code_of(e) == errc::conflict)) {
        for (auto& f : batch) send_batch(self, {f});
      } else if (outcome_unknown(e)) {
        for (auto& f : batch)
          f->answer(make_error(errc::outcome_unknown, "the report may or may not have been stored"));
      } else {
        for (auto& f : batch) f->answer(db::failure(e));
      }
      flush_stores(self);
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto got = i < res->size() ? (*res)[i] : filed{};
      switch (got.outcome) {
        case filed::written: committed(self, batch[i], got.id, got.created_at_ms); break;
        case filed::key_taken:
          // Its key was stored meanwhile by another request (another node): nothing of this one
          // was written, and the key's stored answer is the filer's.
          answer_from_key(self, batch[i], make_error(errc::internal, "the filing conflicted"));
          break;
        case filed::unknown:
          // Committed, but the answer was lost: say so rather than claim a failure.
          batch[i]->answer(make_error(errc::outcome_unknown, "stored, but the id could not be read"));
          break;
      }
    }
    flush_stores(self);
  });
}

// The speaker lookup and InstaNote's job check run at once, the notes are encrypted meanwhile; the
// filing goes on when all three are done. A refusal about the speaker wins over one about the job,
// whichever came first.
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
  if (f->encrypt_failure) {
    f->answer(std::move(*f->encrypt_failure));
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

// Done while the speaker lookup and the job check are on their way, so it adds nothing to the
// filing's latency.
void encrypt_notes(self_ptr self, const filing_ptr& f) {
  auto& st = self->state;
  const auto now = st.wall->unix_seconds(self->clock().now());
  try {
    if (!f->sub.additional_notes.empty())
      f->additional_token = st.cipher->encrypt(f->sub.additional_notes, now);
    if (!f->sub.context_notes.empty()) f->context_token = st.cipher->encrypt(f->sub.context_notes, now);
  } catch (const std::exception& ex) {
    f->encrypt_failure = make_error(errc::internal, std::string("cannot encrypt the notes: ") + ex.what());
  }
  joined(self, f);
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
    std::vector<std::string> jobs;
    while (!st.job_queue.empty() && batch->size() < max_job_batch) {
      batch->push_back(std::move(st.job_queue.front()));
      st.job_queue.pop_front();
      jobs.push_back(batch->back()->sub.job_id);
    }
    ++st.job_checks_in_flight;
    st.jobs->job_owners(jobs, [self, batch](caf::expected<std::map<std::string, std::string>> owners) {
      --self->state.job_checks_in_flight;
      const auto note = owners ? std::string{}
                               : "InstaNote could not tell (" + self->system().render(owners.error()) +
                                   "); ownership not checked";
      self->state.holding_stores = true;
      for (auto& f : *batch) {
        if (!owners) {
          f->job_note = note;
        } else {
          auto it = owners->find(f->sub.job_id);
          judge_job(f, it == owners->end() ? std::nullopt : std::optional<std::string>{it->second});
        }
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
  if (!st.jobs) {
    f->job_note = "job ownership not checked: no InstaNote connection";
    joined(self, f);
    return;
  }
  st.job_queue.push_back(f);
  flush_job_checks(self);
}

// The receipt a filing answered, rebuilt from its row: the row's fields never change after filing,
// and the state every report starts in is the same, so this is exactly what the filer was told.
void replay_filing(self_ptr self, const std::string& stored_id,
                   std::function<void(caf::expected<report_receipt>)> done) {
  auto& st = self->state;
  char* end = nullptr;
  const auto id = std::strtoll(stored_id.c_str(), &end, 10);
  if (stored_id.empty() || *end != '\0') return done(make_error(errc::internal, "unreadable stored answer: " + stored_id));
  st.filings_db->load(id, false, [self, done](caf::expected<caf::optional<stored_report>> got) {
    if (!got) return done(db::failure(got.error()));
    if (!*got) return done(make_error(errc::internal, "the key's report is gone"));
    report_receipt out;
    out.report = with_notes(self, std::move(**got));
    auto& r = out.report;
    r.status = domain::pending_status;
    r.weight = 0.5;
    r.updated_at_ms = r.created_at_ms;
    r.saga_step = std::string{to_string(saga_step::index)};
    r.saga_attempts = 0;
    r.saga_last_error.clear();
    done(std::move(out));
  });
}

// Looks the key up, then calls `done` with nothing (absent) or the answer to give.
void lookup_key(self_ptr self, const request_context& ctx,
                std::function<void(std::optional<caf::expected<report_receipt>>)> done) {
  auto& st = self->state;
  st.filings_db->find_key(ctx, st.settings.idempotency_retention,
                          [self, ctx, done](caf::expected<db::idempotency::lookup_result> found) {
    if (!found) {
      // Only the store's own internal error is a corrupt row: CAF's request_timeout also reads as
      // errc::internal through code_of, and a lookup that timed out is a database not answering.
      if (code_of(db::failure(found.error())) == errc::internal) {
        done(caf::expected<report_receipt>{
          make_error(errc::internal, "unreadable stored answer: " + detail_of(found.error()))});
        return;
      }
      // Nothing was written by this attempt; whether an earlier one was cannot be told now.
      done(caf::expected<report_receipt>{make_error(
        errc::unavailable, "the Idempotency-Key could not be checked: " + detail_of(db::failure(found.error())))});
      return;
    }
    switch (found->v) {
      case db::idempotency::verdict::absent: done(std::nullopt); return;
      case db::idempotency::verdict::reused:
        done(caf::expected<report_receipt>{db::idempotency::reused(ctx)});
        return;
      case db::idempotency::verdict::replay:
        if (found->stored.outcome != 0) {
          done(caf::expected<report_receipt>{db::idempotency::refusal_of(found->stored)});
          return;
        }
        replay_filing(self, found->stored.answer, [done](caf::expected<report_receipt> r) { done(std::move(r)); });
        return;
    }
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
    f->pending = 4;
    check_key(self, f);
  }
  check_speaker(self, f);
  check_job(self, f);
  encrypt_notes(self, f);
  return rp;
}

// --- reading ------------------------------------------------------------------------------------

caf::result<error_report> on_get(self_ptr self, std::int64_t id) {
  if (id <= 0) return invalid("id must be a positive integer");
  auto& st = self->state;
  auto rp = self->make_response_promise<error_report>();
  st.db->load(id, true, [self, rp, id](caf::expected<caf::optional<stored_report>> got) mutable {
    if (!got) {
      rp.deliver(db::failure(got.error()));
      return;
    }
    if (!*got) {
      rp.deliver(make_error(errc::not_found, "no error report " + std::to_string(id)));
      return;
    }
    rp.deliver(with_notes(self, std::move(**got)));
  });
  return rp;
}

caf::result<report_page> on_list(self_ptr self, const report_query& q) {
  auto& st = self->state;
  if (!q.speaker_id.empty()) {
    if (auto why = id_problem(q.speaker_id)) return invalid("speaker_id " + *why);
  }
  if (!q.status.empty() && !is_one_of(report_statuses, q.status))
    return invalid("status must be " + choices_text(report_statuses));
  if (!q.category.empty() && !is_one_of(error_categories, q.category))
    return invalid("category must be " + choices_text(error_categories));
  if (q.before_id < 0) return invalid("cursor must be a positive report id");
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, max_page);
  auto rp = self->make_response_promise<report_page>();
  st.db->list(q, limit + 1, [self, rp, limit](caf::expected<std::vector<stored_report>> rows) mutable {
    if (!rows) {
      rp.deliver(db::failure(rows.error()));
      return;
    }
    report_page page;
    for (auto& row : *rows) {
      if (page.items.size() == limit) {
        page.next_before_id = page.items.back().id;
        break;
      }
      page.items.push_back(with_notes(self, std::move(row)));
    }
    rp.deliver(std::move(page));
  });
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
  st.db->read_status(change.id, change.ctx.scope, change.ctx, st.settings.idempotency_retention,
                     [self, change, deliver, answer_now](caf::expected<caf::optional<status_read>> got) mutable {
    auto& st = self->state;
    if (!got) return deliver(db::failure(got.error()));
    if (!*got) return deliver(make_error(errc::not_found, "no error report " + std::to_string(change.id)));
    const auto& read = **got;
    if (read.key.v == db::idempotency::verdict::reused) return deliver(db::idempotency::reused(change.ctx));
    if (read.key.v == db::idempotency::verdict::replay) return answer_now();
    if (read.status == change.status) {
      // Nothing changes: answer with the report as it is, without re-running the saga.
      answer_now();
      return;
    }
    // Conditional on the status read here: two verdicts racing cannot both apply their weight
    // change to the same starting point.
    status_write w{change.id, read.status, change.status, weight_after(read.status, change.status, read.weight),
                   "status " + read.status + " -> " + change.status + " by " + change.actor +
                     "; the pattern is indexed again"};
    st.db->set_status(w, st.settings.claim, change.ctx,
                      [self, change, deliver, answer_now](caf::expected<verdict_saved> saved) mutable {
      if (!saved) {
        if (outcome_unknown(saved.error()))
          return deliver(make_error(errc::outcome_unknown, "the verdict may or may not have been saved"));
        return deliver(db::failure(saved.error()));
      }
      switch (*saved) {
        case verdict_saved::done:
          self->send(self->state.saga, flush_atom::value, change.id);
          return answer_now();
        case verdict_saved::key_taken: return answer_now();  // the same request committed meanwhile (another node)
        case verdict_saved::status_moved:
          return deliver(make_error(errc::conflict, "the report's status changed meanwhile; read it and retry"));
      }
    });
  });
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
  std::vector<std::int64_t> distinct;
  for (const auto& x : v.verdicts)
    if (std::find(distinct.begin(), distinct.end(), x.report_id) == distinct.end())
      distinct.push_back(x.report_id);
  auto promise = self->make_response_promise<verdicts_applied>();
  auto read_back = [self, promise, speaker = v.speaker_id, until = v.ctx.until, distinct](bool flush) mutable {
    if (flush)
      for (auto id : distinct) self->send(self->state.saga, flush_atom::value, id);
    self->state.db->weights(distinct, speaker, until, [promise](caf::expected<verdicts_applied> out) mutable {
      if (!out) {
      promise.deliver(db::failure(out.error()));
      return;
    }
      promise.deliver(std::move(*out));
    });
  };
  // A false answer: the session's verdicts were applied before, and this is a retry.
  st.db->apply_verdicts(v, st.settings.claim, [promise, read_back](caf::expected<bool> fresh) mutable {
    if (fresh) return read_back(*fresh);
    if (outcome_unknown(fresh.error())) {
      promise.deliver(make_error(errc::outcome_unknown, "the verdicts may or may not have been saved"));
      return;
    }
    promise.deliver(db::failure(fresh.error()));
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
  st.db = open_store(self, st.settings.store, st.settings.db, st.settings.db_timeout);
  st.filings_db = open_store(self, st.settings.store, st.settings.filings, st.settings.db_timeout);
  // A simulation's store answers job checks from its own tables.
  if (st.settings.instanote || st.settings.store)
    st.jobs = open_store(self, st.settings.store, st.settings.instanote, st.settings.lookup_timeout);
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
  if (!settings.db && !settings.store) throw std::invalid_argument("reports: no PostgreSQL actor");
  if (!settings.speakers) throw std::invalid_argument("reports: no speakers shard");
  if (!fernet::from_key(settings.fernet_key))
    throw std::invalid_argument("reports: the Fernet key is not base64url of 32 bytes");
  if (settings.db_timeout.count() <= 0 || settings.lookup_timeout.count() <= 0 ||
      settings.step_timeout.count() <= 0 || settings.relay_interval.count() <= 0 ||
      settings.claim.count() <= 0 || settings.step_delay.count() < 0 || settings.max_running == 0 ||
      settings.filing_batches == 0)
    throw std::invalid_argument("reports: timeouts, intervals, max_running and filing_batches must be positive");
  if (settings.notes_retention.count() < 0 ||
      (settings.notes_retention.count() > 0 &&
       (settings.notes_purge_interval.count() <= 0 || settings.notes_purge_batch == 0)))
    throw std::invalid_argument("reports: a notes retention needs a positive purge interval and batch");
  return sys.spawn(reports_fn, std::move(settings));
}

}  // namespace sbm::reports
