// The reports family against a real PostgreSQL, with the real speakers shard and verification
// scheduler and a pattern index that the test controls (it can fail or be slow on purpose):
// validation and refusals naming the field, InstaNote's job check, notes encrypted at rest, the
// list's filters and pages, and the saga: every step once, retries from the durable outbox, a node
// stopped between steps whose saga another node finishes, a status change that re-indexes.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/events/events.hpp"
#include "actors/reports/core/fernet.hpp"
#include "actors/reports/reports.hpp"
#include "actors/speakers/speakers.hpp"
#include "actors/verification/verification.hpp"
#include "messages/errors.hpp"
#include "runtime/db/commit.hpp"
#include "tests/support/postgres_actor_test.hpp"
#include "tests/support/servers.hpp"
#include "tests/support/table_lock.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;
using sbm::error_report;
using sbm::pattern_record;
using sbm::report_receipt;
using sbm::report_submission;
using param = caf::optional<std::string>;

// A pattern index whose behaviour the test sets: it stores what it is given, and can refuse (with
// an error) the next n upserts.
struct index_probe {
  std::mutex mutex;
  std::map<std::int64_t, pattern_record> stored;
  std::map<std::int64_t, int> upserts;
  int fail_next = 0;
  std::string refuse_text;  // a message holding a pattern with this original_text is refused as invalid
  std::vector<std::size_t> messages;  // records per upsert message taken

  int upserts_of(std::int64_t id) {
    std::lock_guard<std::mutex> guard{mutex};
    return upserts[id];
  }
  caf::optional<pattern_record> get(std::int64_t id) {
    std::lock_guard<std::mutex> guard{mutex};
    auto it = stored.find(id);
    if (it == stored.end()) return caf::none;
    return it->second;
  }
};

// A batch counts as one upsert for fail_next, as it is one statement for the real index.
caf::result<bool> take(index_probe& probe, const std::vector<pattern_record>& records) {
  std::lock_guard<std::mutex> guard{probe.mutex};
  if (probe.fail_next > 0) {
    --probe.fail_next;
    return sbm::make_error(errc::unavailable, "index offline (test)");
  }
  for (const auto& p : records)
    if (!probe.refuse_text.empty() && p.original_text == probe.refuse_text)
      return sbm::make_error(errc::invalid_argument, "original_text: refused (test)");
  probe.messages.push_back(records.size());
  for (const auto& p : records) {
    probe.stored[p.pattern_id] = p;
    ++probe.upserts[p.pattern_id];
  }
  return true;
}

sbm::pattern_index_actor::behavior_type fake_index(std::shared_ptr<index_probe> probe) {
  return {
    [probe](sbm::upsert_atom, const pattern_record& p) { return take(*probe, {p}); },
    [probe](sbm::upsert_atom, const sbm::pattern_record_batch& b) { return take(*probe, b.records); },
    [probe](sbm::delete_atom, std::int64_t id) {
      std::lock_guard<std::mutex> guard{probe->mutex};
      return probe->stored.erase(id) > 0;
    },
    [probe](sbm::search_atom, const sbm::pattern_search&) { return sbm::pattern_hits{}; },
    [](sbm::search_atom, const sbm::pattern_batch_search&) { return sbm::pattern_batch_hits{}; },
    [probe](sbm::status_atom) { return sbm::pattern_index_status{}; },
    [probe](sbm::metrics_atom) { return sbm::component_metrics{}; },
  };
}

// A pattern index that answers no upsert until the test releases what it holds (delete_atom with
// id -1, which no saga sends): how many index statements the sagas keep in flight at once is then
// a count the test reads, not a race it hopes to win.
struct held_index_probe {
  std::mutex mutex;
  std::vector<std::size_t> batches;  // records per upsert message taken, in order
  std::map<std::int64_t, int> upserts;
  std::size_t held = 0;  // upserts not answered yet

  std::size_t held_now() {
    std::lock_guard<std::mutex> guard{mutex};
    return held;
  }
  std::vector<std::size_t> batches_now() {
    std::lock_guard<std::mutex> guard{mutex};
    return batches;
  }
};

sbm::pattern_index_actor::behavior_type holding_index(sbm::pattern_index_actor::pointer self,
                                                      std::shared_ptr<held_index_probe> probe) {
  auto promises = std::make_shared<std::vector<caf::typed_response_promise<bool>>>();
  auto hold = [self, probe, promises](const std::vector<pattern_record>& records) {
    std::lock_guard<std::mutex> guard{probe->mutex};
    probe->batches.push_back(records.size());
    for (const auto& p : records) ++probe->upserts[p.pattern_id];
    ++probe->held;
    promises->push_back(self->make_response_promise<bool>());
    return promises->back();
  };
  return {
    [hold](sbm::upsert_atom, const pattern_record& p) -> caf::result<bool> { return hold({p}); },
    [hold](sbm::upsert_atom, const sbm::pattern_record_batch& b) -> caf::result<bool> {
      return hold(b.records);
    },
    [probe, promises](sbm::delete_atom, std::int64_t id) {
      if (id != -1) return false;
      for (auto& rp : *promises) rp.deliver(true);
      promises->clear();
      std::lock_guard<std::mutex> guard{probe->mutex};
      probe->held = 0;
      return true;
    },
    [](sbm::search_atom, const sbm::pattern_search&) { return sbm::pattern_hits{}; },
    [](sbm::search_atom, const sbm::pattern_batch_search&) { return sbm::pattern_batch_hits{}; },
    [](sbm::status_atom) { return sbm::pattern_index_status{}; },
    [](sbm::metrics_atom) { return sbm::component_metrics{}; },
  };
}

// What the notify step tells the pattern-learning subscriber.
struct learning_probe {
  std::mutex mutex;
  std::vector<sbm::pattern_learned> notices;
};

sbm::pattern_learning_subscriber::behavior_type fake_learning(std::shared_ptr<learning_probe> probe) {
  return {
    [probe](sbm::publish_atom, const sbm::pattern_learned& ev) {
      std::lock_guard<std::mutex> guard{probe->mutex};
      probe->notices.push_back(ev);
      return true;
    },
  };
}

report_submission sample(std::string speaker = "spk-1", std::string job = "job-1") {
  report_submission s;
  s.speaker_id = std::move(speaker);
  s.client_id = "clinic-1";
  s.job_id = std::move(job);
  s.original_text = "metoprolal 50 mg";
  s.corrected_text = "metoprolol 50 mg";
  s.error_categories = {"drug_name", "dosage"};
  s.audio_quality = "fair";
  s.speaker_clarity = "moderate";
  s.background_noise = "high";
  s.number_of_speakers = 2;
  s.overlapping_speech = true;
  s.requires_specialized_knowledge = true;
  s.additional_notes = "QA note: the drug is on the patient's list";
  s.context_notes = "context line 1\ncontext line 2";
  s.context_text = "continue metoprolal 50 mg twice daily";
  s.actor = "qa-ann";
  return s;
}

class ReportSaga : public sbm::test::postgres_actor_test {
 protected:
  void SetUp() override {
    pool_size = 3;
    postgres_actor_test::SetUp();
    if (HasFatalFailure()) return;
    bus = stop_at_end(sbm::events::spawn_event_bus(sys));
    scheduler = stop_at_end(sbm::verification::spawn_verification_scheduler(sys, db, bus));
    sbm::speakers::speakers_settings sp;
    sp.db = db;
    sp.bus = bus;
    sp.relay_interval = 100ms;
    shard = stop_at_end(sbm::speakers::spawn_speakers(sys, std::move(sp)));
    register_speaker("spk-1");
    register_speaker("spk-2");
    index = stop_at_end(sys.spawn(fake_index, probe));
    fernet_key = sbm::reports::fernet::generate_key();
  }

  sbm::reports::reports_settings settings() {
    sbm::reports::reports_settings r;
    r.db = db;
    r.speakers = shard;
    r.patterns = index;
    r.schedule = scheduler;
    r.fernet_key = fernet_key;
    r.relay_interval = 50ms;
    r.claim = 500ms;
    r.backoff = {0, 50ms, 200ms, 0.2};
    return r;
  }

  sbm::reports_actor start(sbm::reports::reports_settings r) {
    return stop_at_end(sbm::reports::spawn_reports(sys, std::move(r)));
  }

  // An InstaNote of the test's own: the drafts table SBM reads, filled by `rows` (an INSERT).
  sbm::postgres_actor instanote_with(const std::string& rows) {
    auto url = sbm::test::servers::shared().fresh_database();
    {
      pqxx::connection c{url};
      pqxx::work tx{c};
      tx.exec("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
              "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb, "
              "created_at timestamptz NOT NULL DEFAULT now())");
      tx.exec(rows);
      tx.commit();
    }
    auto in = sbm::connections::instanote_defaults(url);
    in.probe_interval = 100ms;
    return stop_at_end(sbm::connections::spawn_postgres(sys, std::move(in)));
  }

  void register_speaker(const std::string& id) {
    auto v = ask<sbm::speaker_view>(shard, sbm::register_atom::value,
                                    sbm::speaker_registration{id, "clinic-1", "Dr " + id, "admin"});
    ASSERT_TRUE(v) << sys.render(v.error());
  }

  report_receipt file(const sbm::reports_actor& reports, report_submission s) {
    auto r = ask<report_receipt>(reports, sbm::file_atom::value, std::move(s));
    EXPECT_TRUE(r) << sys.render(r.error());
    return r ? *r : report_receipt{};
  }

  std::int64_t file_ok(const sbm::reports_actor& reports, report_submission s) {
    auto receipt = file(reports, std::move(s));
    EXPECT_EQ(receipt.outcome, report_receipt::accepted) << receipt.field << ": " << receipt.reason;
    return receipt.report.id;
  }

  std::string saga_step(std::int64_t id) {
    auto rows = sql("SELECT step FROM reports.report_saga WHERE report_id = $1", {std::to_string(id)});
    return rows.empty() || !rows[0][0] ? std::string{} : *rows[0][0];
  }

  bool done_within(std::int64_t id, std::chrono::milliseconds t = 20s) {
    return sbm::test::eventually([&] { return saga_step(id) == "done"; }, t);
  }

  std::vector<std::string> log_steps(std::int64_t id) {
    std::vector<std::string> out;
    for (const auto& row : sql("SELECT step FROM reports.saga_log WHERE report_id = $1 ORDER BY id",
                               {std::to_string(id)}))
      out.push_back(*row[0]);
    return out;
  }

  std::string schedule_count(std::int64_t id) {
    return *sql("SELECT count(*) FROM verification.schedule WHERE source_key = $1",
                {"report:" + std::to_string(id)})[0][0];
  }

  // Files n reports at once (distinct jobs); answers their ids, every filing accepted.
  std::vector<std::int64_t> file_burst(const sbm::reports_actor& reports, int n, const std::string& tag) {
    std::vector<decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}))> pending;
    for (int i = 0; i < n; ++i)
      pending.push_back(self->request(reports, 30s, sbm::file_atom::value,
                                      sample(i % 2 ? "spk-1" : "spk-2", tag + std::to_string(i))));
    std::vector<std::int64_t> ids;
    for (auto& p : pending)
      p.receive(
        [&](report_receipt& rc) {
          EXPECT_EQ(rc.outcome, report_receipt::accepted) << rc.field << ": " << rc.reason;
          ids.push_back(rc.report.id);
        },
        [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return ids;
  }

  // A queue gauge of the reports actor and its saga (reports.running-sagas, ...).
  std::uint64_t gauge(const sbm::reports_actor& reports, const std::string& name) {
    auto m = ask<sbm::component_metrics>(reports, sbm::metrics_atom::value);
    if (!m) return ~std::uint64_t{0};
    for (const auto& q : m->queues)
      if (q.name == name) return q.depth;
    return ~std::uint64_t{0};
  }

  // Releases what the holding index holds until every saga of `ids` is done. `once`: no claim
  // lapsed meanwhile, so no index step ran twice (a lapsed one may repeat it, which is harmless).
  void release_until_done(const sbm::pattern_index_actor& held, const std::vector<std::int64_t>& ids,
                          bool once = true) {
    ASSERT_TRUE(sbm::test::eventually([&] {
      self->send(held, sbm::delete_atom::value, std::int64_t{-1});
      return sql("SELECT count(*) FROM reports.report_saga WHERE step <> 'done'")[0][0] == param{"0"};
    }, 60s));
    std::lock_guard<std::mutex> guard{held_probe->mutex};
    for (auto id : ids) {
      if (once)
        EXPECT_EQ(held_probe->upserts[id], 1) << id;
      else
        EXPECT_GE(held_probe->upserts[id], 1) << id;
      EXPECT_EQ(schedule_count(id), "1") << id;
    }
  }

  std::shared_ptr<held_index_probe> held_probe = std::make_shared<held_index_probe>();
  sbm::event_bus_actor bus;
  sbm::verification_scheduler_actor scheduler;
  sbm::speaker_shard_actor shard;
  std::shared_ptr<index_probe> probe = std::make_shared<index_probe>();
  sbm::pattern_index_actor index;
  std::string fernet_key;
};

TEST_F(ReportSaga, AFiledReportIsCommittedThenIndexedNotifiedAndScheduledOnce) {
  auto learning = std::make_shared<learning_probe>();
  auto r = settings();
  r.learning = stop_at_end(sys.spawn(fake_learning, learning));
  auto reports = start(r);
  auto receipt = file(reports, sample());
  ASSERT_EQ(receipt.outcome, report_receipt::accepted) << receipt.reason;
  const auto id = receipt.report.id;
  EXPECT_GT(id, 0);
  EXPECT_EQ(receipt.report.status, "pending");
  EXPECT_EQ(receipt.report.bucket_type, "high_touch");
  // Committed before the answer: the row is there the moment the receipt is.
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports WHERE id = $1", {std::to_string(id)})[0][0],
            param{"1"});

  ASSERT_TRUE(done_within(id));
  auto p = probe->get(id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->speaker_id, "spk-1");
  EXPECT_EQ(p->client_id, "clinic-1");
  EXPECT_EQ(p->bucket_type, "high_touch");
  EXPECT_EQ(p->original_text, "metoprolal 50 mg");
  EXPECT_EQ(p->corrected_text, "metoprolol 50 mg");
  EXPECT_EQ(p->context_text, "continue metoprolal 50 mg twice daily");
  EXPECT_EQ(p->error_categories, (std::vector<std::string>{"drug_name", "dosage"}));
  EXPECT_EQ(p->audio_quality, "fair");
  EXPECT_EQ(p->speaker_clarity, "moderate");
  EXPECT_EQ(p->background_noise, "high");
  EXPECT_EQ(p->number_of_speakers, 2);
  EXPECT_TRUE(p->overlapping_speech);
  EXPECT_TRUE(p->requires_specialized_knowledge);
  EXPECT_EQ(p->status, "pending");
  EXPECT_DOUBLE_EQ(p->weight, 0.5);
  EXPECT_EQ(p->created_at_ms, receipt.report.created_at_ms);
  EXPECT_EQ(probe->upserts_of(id), 1);
  {
    std::lock_guard<std::mutex> guard{learning->mutex};
    ASSERT_EQ(learning->notices.size(), 1u);
    EXPECT_EQ(learning->notices[0].report_id, id);
    EXPECT_EQ(learning->notices[0].speaker_id, "spk-1");
  }
  EXPECT_EQ(schedule_count(id), "1");
  auto sched = sql("SELECT priority, reason FROM verification.schedule WHERE source_key = $1",
                   {"report:" + std::to_string(id)});
  EXPECT_EQ(sched[0][0], param{"normal"});
  EXPECT_EQ(sched[0][1], param{"error report " + std::to_string(id) + " (drug_name, dosage)"});
  EXPECT_EQ(log_steps(id), (std::vector<std::string>{"store", "index", "notify", "schedule"}));

  auto got = ask<error_report>(reports, sbm::get_atom::value, id);
  ASSERT_TRUE(got) << sys.render(got.error());
  EXPECT_EQ(got->saga_step, "done");
  ASSERT_EQ(got->saga_log.size(), 4u);
  EXPECT_NE(got->saga_log[0].note.find("InstaNote"), std::string::npos) << got->saga_log[0].note;
  EXPECT_GT(got->saga_log[3].at_ms, 0);
}

TEST_F(ReportSaga, AReportOnANoTouchSpeakerIsVerifiedWithHighPriority) {
  auto pinned = ask<sbm::speaker_view>(shard, sbm::pin_atom::value,
                                       sbm::bucket_pin{"spk-2", "no_touch", "trusted", "lead"});
  ASSERT_TRUE(pinned) << sys.render(pinned.error());
  auto reports = start(settings());
  auto id = file_ok(reports, sample("spk-2"));
  ASSERT_TRUE(done_within(id));
  EXPECT_EQ(probe->get(id)->bucket_type, "no_touch");
  EXPECT_EQ(sql("SELECT priority FROM verification.schedule WHERE source_key = $1",
                {"report:" + std::to_string(id)})[0][0],
            param{"high"});
}

TEST_F(ReportSaga, AFailingIndexIsRetriedFromTheOutboxUntilItTakesThePattern) {
  probe->fail_next = 3;
  auto reports = start(settings());
  auto id = file_ok(reports, sample());
  ASSERT_TRUE(done_within(id));
  EXPECT_EQ(probe->upserts_of(id), 1);
  EXPECT_EQ(probe->fail_next, 0);
  // One log line for the first failure, however many retries followed; the success says how many.
  EXPECT_EQ(log_steps(id), (std::vector<std::string>{"store", "retry", "index", "notify", "schedule"}));
  auto index_note = sql("SELECT note FROM reports.saga_log WHERE report_id = $1 AND step = 'index'",
                        {std::to_string(id)});
  EXPECT_NE(index_note[0][0]->find("after 3 failed attempts"), std::string::npos) << *index_note[0][0];
  auto row = sql("SELECT attempts, last_error, completed_at IS NOT NULL FROM reports.report_saga "
                 "WHERE report_id = $1",
                 {std::to_string(id)});
  EXPECT_EQ(row[0][0], param{"0"});
  EXPECT_EQ(row[0][1], param{});
  EXPECT_EQ(row[0][2], param{"t"});
}

TEST_F(ReportSaga, ASagaLeftByAStoppedNodeIsFinishedByTheNextOne) {
  // The first node waits long before every step, so it is stopped (as if killed) with its reports
  // committed and nothing indexed; the second one takes them over when their claim lapses.
  auto r = settings();
  r.step_delay = 30s;
  auto first = sbm::reports::spawn_reports(sys, r);
  auto a = file_ok(first, sample("spk-1", "job-a"));
  auto b = file_ok(first, sample("spk-2", "job-b"));
  self->send_exit(first, caf::exit_reason::kill);
  self->wait_for(first);
  EXPECT_EQ(saga_step(a), "index");
  EXPECT_EQ(saga_step(b), "index");
  EXPECT_FALSE(probe->get(a));

  auto second = start(settings());
  ASSERT_TRUE(done_within(a));
  ASSERT_TRUE(done_within(b));
  EXPECT_EQ(probe->upserts_of(a), 1);
  EXPECT_EQ(probe->upserts_of(b), 1);
  EXPECT_EQ(schedule_count(a), "1");
  EXPECT_EQ(schedule_count(b), "1");
}

TEST_F(ReportSaga, ARunnerWhoseClaimWasTakenOverMovesNothing) {
  auto r = settings();
  r.step_delay = 1s;  // the index step runs a second after the filing
  r.claim = 30s;
  auto reports = start(r);
  auto id = file_ok(reports, sample("spk-1", "job-fenced"));
  // Meanwhile the claim passes to another runner (as after this one seemed dead for a while).
  sql("UPDATE reports.report_saga SET claim = 'another-runner', next_attempt_at = now() + "
      "interval '1 hour' WHERE report_id = $1",
      {std::to_string(id)});
  // The step still runs (steps are idempotent), but its acknowledgement must not move the row.
  ASSERT_TRUE(sbm::test::eventually([&] { return probe->upserts_of(id) == 1; }, 10s));
  ASSERT_TRUE(sbm::test::eventually([&] {
    return !sql("SELECT 1 FROM reports.saga_log WHERE report_id = $1 AND step = 'index'",
                {std::to_string(id)}).empty();
  }, 10s));
  EXPECT_EQ(saga_step(id), "index");
  EXPECT_EQ(sql("SELECT claim FROM reports.report_saga WHERE report_id = $1",
                {std::to_string(id)})[0][0],
            param{"another-runner"});
  // Once the other runner's claim lapses, this one takes it over and finishes.
  sql("UPDATE reports.report_saga SET next_attempt_at = now() WHERE report_id = $1",
      {std::to_string(id)});
  ASSERT_TRUE(done_within(id));
}

TEST_F(ReportSaga, ARetryOfAFilingUnderItsKeyAnswersTheFirstReceipt) {
  auto reports = start(settings());
  auto s = sample("spk-1", "job-keyed");
  s.ctx.idempotency_key = "file-1";
  s.ctx.request_digest = "digest-1";
  s.ctx.principal = "qa-ann";
  auto first = file(reports, s);
  ASSERT_EQ(first.outcome, report_receipt::accepted) << first.reason;
  ASSERT_TRUE(done_within(first.report.id));
  // The report moved on (indexed, verdict given) before the retry arrives.
  auto verdict = ask<sbm::error_report>(reports, sbm::update_atom::value,
                                        sbm::report_status_change{first.report.id, "rectified", "lead"});
  ASSERT_TRUE(verdict) << sys.render(verdict.error());
  auto again = file(reports, s);
  ASSERT_EQ(again.outcome, report_receipt::accepted) << again.reason;
  EXPECT_EQ(again.report.id, first.report.id);
  EXPECT_EQ(again.report.status, "pending");  // as the first answer said
  EXPECT_EQ(again.report.created_at_ms, first.report.created_at_ms);
  EXPECT_EQ(again.report.fields.additional_notes, first.report.fields.additional_notes);
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{"1"});
  // Another request under the same key is refused and stores nothing.
  auto other = sample("spk-2", "job-other");
  other.ctx = s.ctx;
  other.ctx.request_digest = "digest-2";
  auto refused = ask<report_receipt>(reports, sbm::file_atom::value, other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::key_reused);
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{"1"});
}

TEST_F(ReportSaga, FilingsPastTheQueueBoundAreRefusedAndWriteNothing) {
  auto r = settings();
  r.max_queued = 1;
  auto reports = start(r);
  // Hold the table so the first filing waits in its INSERT.
  ASSERT_TRUE(sbm::test::hold_table_lock(sys, db, "reports.error_reports", "SHARE", 1.5));
  caf::actor collector = caf::actor_cast<caf::actor>(self);
  for (auto job : {"job-q1", "job-q2"})
    sys.spawn([=](caf::event_based_actor* requester) {
      requester->request(reports, 30s, sbm::file_atom::value, sample("spk-1", job))
        .then([=](report_receipt&) { caf::anon_send(collector, 0); },
              [=](caf::error& e) { caf::anon_send(collector, static_cast<int>(sbm::code_of(e))); });
    });
  std::vector<errc> codes;
  for (int i = 0; i < 2; ++i)
    self->receive([&](int c) { codes.push_back(static_cast<errc>(c)); },
                  caf::after(30s) >> [] { ADD_FAILURE() << "no answer"; });
  ASSERT_EQ(codes.size(), 2u);
  EXPECT_EQ(codes[0], errc::overloaded);  // at once, while the other waits
  EXPECT_EQ(codes[1], errc::none);
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{"1"});
}

TEST_F(ReportSaga, ABurstUnderDistinctAndRepeatedKeysStoresEachOnceAndAnswersRepeatsWithTheFirst) {
  // Two nodes get the same keyed request at once (a client retrying through another node) while
  // the table is held, so both checks find no key and both batches wait in their INSERT: the
  // loser's row is skipped by the key's ON CONFLICT and it answers from the winner's key.
  auto a = start(settings());
  auto b = start(settings());
  constexpr int keyed = 30;
  constexpr int unkeyed = 10;
  auto keyed_sample = [](int i) {
    auto s = sample(i % 2 ? "spk-1" : "spk-2", "job-k" + std::to_string(i));
    s.ctx.principal = "qa-ann";
    s.ctx.idempotency_key = "key-" + std::to_string(i);
    s.ctx.request_digest = "digest-" + std::to_string(i);
    return s;
  };
  ASSERT_TRUE(sbm::test::hold_table_lock(sys, db, "reports.error_reports", "SHARE", 1.5));
  using pending_t = decltype(self->request(a, 30s, sbm::file_atom::value, report_submission{}));
  std::vector<pending_t> on_a, on_b, plain;
  for (int i = 0; i < keyed; ++i) {
    on_a.push_back(self->request(a, 30s, sbm::file_atom::value, keyed_sample(i)));
    on_b.push_back(self->request(b, 30s, sbm::file_atom::value, keyed_sample(i)));
  }
  for (int i = 0; i < unkeyed; ++i)
    plain.push_back(self->request(i % 2 ? a : b, 30s, sbm::file_atom::value,
                                  sample("spk-1", "job-u" + std::to_string(i))));
  auto collect = [&](std::vector<pending_t>& from) {
    std::vector<report_receipt> out;
    for (auto& p : from)
      p.receive([&](report_receipt& r) { out.push_back(std::move(r)); },
                [&](caf::error& e) {
                  ADD_FAILURE() << sys.render(e);
                  out.emplace_back();
                });
    return out;
  };
  auto from_a = collect(on_a);
  auto from_b = collect(on_b);
  auto from_plain = collect(plain);
  std::set<std::int64_t> ids;
  for (int i = 0; i < keyed; ++i) {
    const auto& x = from_a[static_cast<std::size_t>(i)];
    const auto& y = from_b[static_cast<std::size_t>(i)];
    ASSERT_EQ(x.outcome, report_receipt::accepted) << x.reason;
    ASSERT_EQ(y.outcome, report_receipt::accepted) << y.reason;
    EXPECT_EQ(x.report.id, y.report.id) << "key-" << i;
    EXPECT_EQ(x.report.created_at_ms, y.report.created_at_ms) << "key-" << i;
    EXPECT_EQ(y.report.fields.job_id, "job-k" + std::to_string(i));
    ids.insert(x.report.id);
    // The key answers the row that holds this very request.
    EXPECT_EQ(sql("SELECT answer FROM reports.idempotency_keys WHERE idem_key = $1",
                  {"key-" + std::to_string(i)})[0][0],
              param{std::to_string(x.report.id)});
  }
  for (const auto& r : from_plain) {
    ASSERT_EQ(r.outcome, report_receipt::accepted) << r.reason;
    ids.insert(r.report.id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(keyed + unkeyed));
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0],
            param{std::to_string(keyed + unkeyed)});
  EXPECT_EQ(sql("SELECT count(*) FROM reports.idempotency_keys")[0][0], param{std::to_string(keyed)});
  EXPECT_EQ(sql("SELECT count(*) FROM reports.report_saga")[0][0],
            param{std::to_string(keyed + unkeyed)});
  // Later repeats are replays of the first answer; the same key for another request is refused.
  auto again = file(b, keyed_sample(3));
  EXPECT_EQ(again.report.id, from_a[3].report.id);
  auto other = keyed_sample(3);
  other.ctx.request_digest = "digest-other";
  auto refused = ask<report_receipt>(a, sbm::file_atom::value, other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::key_reused);
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0],
            param{std::to_string(keyed + unkeyed)});
}

TEST_F(ReportSaga, AFilingWhoseDeadlinePassesWhileItWaitsIsNotWritten) {
  auto reports = start(settings());
  // The table is held until the deadline has passed (released by the test, not after a fixed
  // time), so the filing cannot have been stored before it: it is dropped unwritten, the others
  // are stored once the table is free.
  pqxx::connection locker{database_url};
  pqxx::work hold{locker};
  hold.exec0("LOCK TABLE reports.error_reports IN SHARE MODE");
  using pending_t = decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}));
  std::vector<pending_t> first;
  for (auto job : {"job-d1", "job-d2"})
    first.push_back(self->request(reports, 60s, sbm::file_atom::value, sample("spk-1", job)));
  auto late = sample("spk-1", "job-late");
  const auto until = sbm::deadline::after(sys.clock().now(), 500ms);
  late.ctx.until = until;
  auto late_answer = self->request(reports, 60s, sbm::file_atom::value, late);
  ASSERT_TRUE(sbm::test::eventually([&] { return until.passed(sys.clock().now()); }, 5s));
  hold.abort();
  late_answer.receive([](report_receipt&) { ADD_FAILURE() << "a filing past its deadline was stored"; },
                      [](caf::error& e) { EXPECT_EQ(sbm::code_of(e), errc::deadline_exceeded); });
  for (auto& p : first)
    p.receive([](report_receipt& r) { EXPECT_EQ(r.outcome, report_receipt::accepted); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports WHERE job_id = 'job-late'")[0][0], param{"0"});
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{"2"});
}

TEST_F(ReportSaga, AStopAfterTheIndexStepRepeatsNothingButTheUnacknowledged) {
  auto r = settings();
  r.step_delay = 400ms;
  auto first = sbm::reports::spawn_reports(sys, r);
  auto id = file_ok(first, sample());
  // No pattern-learning subscriber: notify is recorded with the index step, schedule is next.
  ASSERT_TRUE(sbm::test::eventually([&] { return saga_step(id) == "schedule"; }, 10s));
  self->send_exit(first, caf::exit_reason::kill);
  self->wait_for(first);
  EXPECT_EQ(probe->upserts_of(id), 1);
  EXPECT_EQ(schedule_count(id), "0");

  auto second = start(settings());
  ASSERT_TRUE(done_within(id));
  EXPECT_EQ(probe->upserts_of(id), 1);  // indexed once: that step was acknowledged before the stop
  EXPECT_EQ(schedule_count(id), "1");
  EXPECT_EQ(log_steps(id), (std::vector<std::string>{"store", "index", "notify", "schedule"}));
}

TEST_F(ReportSaga, AStatusChangeIsStoredAndTheIndexFollows) {
  auto reports = start(settings());
  auto id = file_ok(reports, sample());
  ASSERT_TRUE(done_within(id));
  auto changed = ask<error_report>(reports, sbm::update_atom::value,
                                   sbm::report_status_change{id, "rectified", "lead-bo"});
  ASSERT_TRUE(changed) << sys.render(changed.error());
  EXPECT_EQ(changed->status, "rectified");
  EXPECT_DOUBLE_EQ(changed->weight, 0.6);
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto p = probe->get(id);
    return p && p->status == "rectified" && saga_step(id) == "done";
  }));
  EXPECT_DOUBLE_EQ(probe->get(id)->weight, 0.6);
  EXPECT_EQ(probe->upserts_of(id), 2);
  EXPECT_EQ(schedule_count(id), "1");  // scheduling again is a no-op keyed by the report
  EXPECT_EQ(sql("SELECT revision FROM reports.report_saga WHERE report_id = $1", {std::to_string(id)})[0][0],
            param{"1"});

  // The same verdict again changes nothing and runs nothing.
  auto again = ask<error_report>(reports, sbm::update_atom::value,
                                 sbm::report_status_change{id, "rectified", "lead-bo"});
  ASSERT_TRUE(again);
  EXPECT_DOUBLE_EQ(again->weight, 0.6);
  auto flipped = ask<error_report>(reports, sbm::update_atom::value,
                                   sbm::report_status_change{id, "not_rectified", "lead-bo"});
  ASSERT_TRUE(flipped);
  EXPECT_DOUBLE_EQ(flipped->weight, 0.4);
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto p = probe->get(id);
    return p && p->status == "not_rectified" && saga_step(id) == "done";
  }));

  auto bad = ask<error_report>(reports, sbm::update_atom::value,
                               sbm::report_status_change{id, "pending", "lead-bo"});
  EXPECT_EQ(sbm::code_of(bad.error()), errc::invalid_argument);
  auto missing = ask<error_report>(reports, sbm::update_atom::value,
                                   sbm::report_status_change{id + 1000, "rectified", "lead-bo"});
  EXPECT_EQ(sbm::code_of(missing.error()), errc::not_found);
}

TEST_F(ReportSaga, RefusalsNameTheField) {
  auto reports = start(settings());
  auto expect_refused = [&](report_submission s, std::uint8_t outcome, const std::string& field) {
    auto receipt = file(reports, std::move(s));
    EXPECT_EQ(receipt.outcome, outcome) << field;
    EXPECT_EQ(receipt.field, field);
    EXPECT_NE(receipt.reason.find("'" + field + "'"), std::string::npos) << receipt.reason;
  };
  auto s = sample();
  s.error_categories = {"drug_name", "spelling"};
  expect_refused(s, report_receipt::malformed, "error_categories");
  s = sample();
  s.corrected_text = s.original_text;
  expect_refused(s, report_receipt::unprocessable, "corrected_text");
  expect_refused(sample("spk-nobody"), report_receipt::unprocessable, "speaker_id");
  s = sample();
  s.client_id = "clinic-2";
  expect_refused(s, report_receipt::unprocessable, "client_id");
  auto r = settings();
  r.limits.max_text_bytes = 10;
  auto strict = start(r);
  auto receipt = file(strict, sample());
  EXPECT_EQ(receipt.outcome, report_receipt::malformed);
  EXPECT_EQ(receipt.field, "original_text");
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{"0"});
}

TEST_F(ReportSaga, InstaNoteDecidesWhoseJobItIsWhenItCanTell) {
  auto instanote = instanote_with(
    "INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text) VALUES "
    "('job-of-1', 'spk-1', 'clinic-1', 'draft'), ('job-of-2', 'spk-2', 'clinic-1', 'draft')");
  auto r = settings();
  r.instanote = instanote;
  auto reports = start(r);

  auto theirs = file(reports, sample("spk-1", "job-of-2"));
  EXPECT_EQ(theirs.outcome, report_receipt::unprocessable);
  EXPECT_EQ(theirs.field, "job_id");
  auto mine = file_ok(reports, sample("spk-1", "job-of-1"));
  auto unknown = file_ok(reports, sample("spk-1", "job-unknown"));
  auto note = [&](std::int64_t id) {
    return *sql("SELECT note FROM reports.saga_log WHERE report_id = $1 AND step = 'store'",
                {std::to_string(id)})[0][0];
  };
  EXPECT_NE(note(mine).find("InstaNote confirms"), std::string::npos) << note(mine);
  EXPECT_NE(note(unknown).find("InstaNote has no such job"), std::string::npos) << note(unknown);

  // An InstaNote without the table (or down) cannot tell: the report is accepted and says so.
  auto empty = sbm::connections::instanote_defaults(sbm::test::servers::shared().fresh_database());
  auto blind = stop_at_end(sbm::connections::spawn_postgres(sys, std::move(empty)));
  r.instanote = blind;
  auto reports2 = start(r);
  auto accepted = file_ok(reports2, sample("spk-1", "job-of-2"));
  EXPECT_NE(note(accepted).find("InstaNote could not tell"), std::string::npos) << note(accepted);
}

TEST_F(ReportSaga, JobChecksOfABurstAreAskedTogetherYetEachFilingIsJudgedByItsOwnJob) {
  auto instanote = instanote_with(
    "INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text) SELECT "
    "'job-' || i, CASE WHEN i % 3 = 0 THEN 'spk-1' ELSE 'spk-2' END, 'clinic-1', 'draft' "
    "FROM generate_series(0, 199) i");
  auto r = settings();
  r.instanote = instanote;
  auto reports = start(r);
  // More filings at once than one statement asks about (64), from two speakers (each below the
  // shard's 64 waiting requests per speaker), some jobs named twice: i % 4 == 3 names a job
  // InstaNote does not have, the others one of spk-1's (job number % 3 == 0) or spk-2's.
  constexpr int n = 120;
  auto speaker_of = [](int i) { return std::string{i % 2 ? "spk-1" : "spk-2"}; };
  auto job_of = [](int i) {
    return i % 4 == 3 ? "job-unknown-" + std::to_string(i) : "job-" + std::to_string(i % 90);
  };
  std::vector<caf::expected<report_receipt>> answers(n, caf::error{});
  {
    std::vector<decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}))> pending;
    for (int i = 0; i < n; ++i)
      pending.push_back(
        self->request(reports, 30s, sbm::file_atom::value, sample(speaker_of(i), job_of(i))));
    for (int i = 0; i < n; ++i)
      pending[static_cast<std::size_t>(i)].receive(
        [&](report_receipt& x) { answers[static_cast<std::size_t>(i)] = std::move(x); },
        [&](caf::error& e) { answers[static_cast<std::size_t>(i)] = std::move(e); });
  }
  int refused = 0, confirmed = 0, unknown = 0;
  for (int i = 0; i < n; ++i) {
    const auto& a = answers[static_cast<std::size_t>(i)];
    ASSERT_TRUE(a) << i << ": " << sys.render(a.error());
    const auto job = job_of(i);
    const bool known = i % 4 != 3;
    const std::string owner = (i % 90) % 3 == 0 ? "spk-1" : "spk-2";
    if (known && owner != speaker_of(i)) {
      ++refused;
      EXPECT_EQ(a->outcome, report_receipt::unprocessable) << i << " " << job;
      EXPECT_EQ(a->field, "job_id") << i;
      continue;
    }
    ++(known ? confirmed : unknown);
    ASSERT_EQ(a->outcome, report_receipt::accepted) << i << " " << job << ": " << a->reason;
    auto note = *sql("SELECT note FROM reports.saga_log WHERE report_id = $1 AND step = 'store'",
                     {std::to_string(a->report.id)})[0][0];
    EXPECT_NE(note.find(known ? "InstaNote confirms" : "InstaNote has no such job"),
              std::string::npos)
      << i << " " << job << ": " << note;
  }
  // Every kind of answer occurred, so a mix-up between filings of one statement would show.
  EXPECT_GT(refused, 0);
  EXPECT_GT(confirmed, 0);
  EXPECT_GT(unknown, 0);
}

TEST_F(ReportSaga, NotesAreFernetTokensAtRestAndADamagedTokenReadsAsEncryptedData) {
  auto reports = start(settings());
  auto id = file_ok(reports, sample());
  auto row = sql("SELECT additional_notes_token, context_notes_token FROM reports.error_reports "
                 "WHERE id = $1",
                 {std::to_string(id)});
  ASSERT_TRUE(row[0][0] && row[0][1]);
  EXPECT_EQ(row[0][0]->find("QA note"), std::string::npos);
  auto cipher = sbm::reports::fernet::from_key(fernet_key);
  ASSERT_TRUE(cipher);
  EXPECT_EQ(cipher->decrypt(*row[0][0]), std::optional<std::string>{"QA note: the drug is on the patient's list"});
  EXPECT_EQ(cipher->decrypt(*row[0][1]), std::optional<std::string>{"context line 1\ncontext line 2"});

  // A report without notes stores NULL, not a token of the empty string.
  auto bare = sample();
  bare.additional_notes.clear();
  bare.context_notes.clear();
  auto bare_id = file_ok(reports, bare);
  auto nulls = sql("SELECT additional_notes_token IS NULL, context_notes_token IS NULL FROM "
                   "reports.error_reports WHERE id = $1",
                   {std::to_string(bare_id)});
  EXPECT_EQ(nulls[0][0], param{"t"});
  EXPECT_EQ(nulls[0][1], param{"t"});

  // Flip one character of the stored token: the HMAC fails, the read does not.
  sql("UPDATE reports.error_reports SET additional_notes_token = "
      "overlay(additional_notes_token placing (CASE WHEN substr(additional_notes_token, 20, 1) = 'A' "
      "THEN 'B' ELSE 'A' END) from 20 for 1) WHERE id = $1",
      {std::to_string(id)});
  auto got = ask<error_report>(reports, sbm::get_atom::value, id);
  ASSERT_TRUE(got) << sys.render(got.error());
  EXPECT_EQ(got->fields.additional_notes, "[Encrypted Data]");
  EXPECT_EQ(got->fields.context_notes, "context line 1\ncontext line 2");

  // A token written by another tool with the same key reads back.
  sql("UPDATE reports.error_reports SET context_notes_token = $2 WHERE id = $1",
      {std::to_string(id), cipher->encrypt("written elsewhere", 1700000000)});
  got = ask<error_report>(reports, sbm::get_atom::value, id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->fields.context_notes, "written elsewhere");
}

TEST_F(ReportSaga, TheListFiltersByBoundValuesAndPagesNewestFirst) {
  auto reports = start(settings());
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(file_ok(reports, sample("spk-1", "job-" + std::to_string(i))));
  auto other = sample("spk-2", "job-x");
  other.error_categories = {"homophone"};
  other.original_text = "'; DROP TABLE reports.error_reports; --";
  other.corrected_text = "' OR '1'='1";
  ids.push_back(file_ok(reports, other));
  auto list = [&](sbm::report_query q) {
    auto page = ask<sbm::report_page>(reports, sbm::list_atom::value, std::move(q));
    EXPECT_TRUE(page) << sys.render(page.error());
    return page ? *page : sbm::report_page{};
  };
  auto all = list({});
  ASSERT_EQ(all.items.size(), 6u);
  EXPECT_EQ(all.items.front().id, ids.back());  // newest first
  EXPECT_EQ(all.items.front().fields.original_text, "'; DROP TABLE reports.error_reports; --");
  EXPECT_EQ(all.next_before_id, 0);

  sbm::report_query by_speaker;
  by_speaker.speaker_id = "spk-1";
  by_speaker.limit = 2;
  std::vector<std::int64_t> seen;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = list(by_speaker);
    for (const auto& r : page.items) seen.push_back(r.id);
    EXPECT_LE(page.items.size(), 2u);
    if (page.next_before_id == 0) break;
    by_speaker.before_id = page.next_before_id;
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{ids[4], ids[3], ids[2], ids[1], ids[0]}));

  sbm::report_query by_category;
  by_category.category = "homophone";
  auto homophones = list(by_category);
  ASSERT_EQ(homophones.items.size(), 1u);
  EXPECT_EQ(homophones.items[0].fields.speaker_id, "spk-2");

  sbm::report_query injected;
  injected.speaker_id = "spk-1' OR '1'='1";
  EXPECT_TRUE(list(injected).items.empty());

  ASSERT_TRUE(ask<error_report>(reports, sbm::update_atom::value,
                                sbm::report_status_change{ids[2], "rectified", "lead"}));
  sbm::report_query rectified;
  rectified.status = "rectified";
  auto r = list(rectified);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].id, ids[2]);

  sbm::report_query future;
  future.from_ms = all.items.front().created_at_ms + 60'000;
  EXPECT_TRUE(list(future).items.empty());
  sbm::report_query window;
  window.from_ms = all.items.back().created_at_ms;
  window.to_ms = all.items.front().created_at_ms;
  EXPECT_EQ(list(window).items.size(), 6u);

  sbm::report_query bad;
  bad.category = "spelling";
  auto refused = ask<sbm::report_page>(reports, sbm::list_atom::value, bad);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::invalid_argument);
  auto missing = ask<error_report>(reports, sbm::get_atom::value, std::int64_t{999999});
  EXPECT_EQ(sbm::code_of(missing.error()), errc::not_found);
}

TEST_F(ReportSaga, ConcurrentFilingsShareCommitsYetEachIsAnsweredWithItsOwnRow) {
  // A row the database refuses fails its whole batch statement; the batch is then filed report by
  // report, so only that one fails. The trigger stands in for any refusal validation cannot see.
  sql("CREATE FUNCTION reports.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.job_id = 'poison' THEN RAISE EXCEPTION 'poison' USING ERRCODE = '23514'; END IF; "
      "RETURN NEW; END $$");
  sql("CREATE TRIGGER refuse_poison BEFORE INSERT ON reports.error_reports FOR EACH ROW "
      "EXECUTE FUNCTION reports.refuse_poison()");
  auto reports = start(settings());
  constexpr int n = 120;
  std::vector<caf::expected<report_receipt>> answers(n, caf::error{});
  {
    // Every request is sent before the first answer is awaited, so the filings overlap.
    std::vector<decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}))> pending;
    for (int i = 0; i < n; ++i)
      pending.push_back(self->request(reports, 30s, sbm::file_atom::value,
                                      sample(i % 2 ? "spk-1" : "spk-2",
                                             i == 77 ? "poison" : "job-" + std::to_string(i))));
    for (int i = 0; i < n; ++i)
      pending[static_cast<std::size_t>(i)].receive(
        [&](report_receipt& r) { answers[static_cast<std::size_t>(i)] = std::move(r); },
        [&](caf::error& e) { answers[static_cast<std::size_t>(i)] = std::move(e); });
  }
  std::set<std::int64_t> ids;
  for (int i = 0; i < n; ++i) {
    const auto& a = answers[static_cast<std::size_t>(i)];
    if (i == 77) {
      ASSERT_FALSE(a) << "the poisoned report must fail";
      EXPECT_EQ(sbm::code_of(a.error()), errc::invalid_argument);
      continue;
    }
    ASSERT_TRUE(a) << i << ": " << sys.render(a.error());
    ASSERT_EQ(a->outcome, report_receipt::accepted) << a->reason;
    EXPECT_EQ(a->report.fields.job_id, "job-" + std::to_string(i));
    ids.insert(a->report.id);
    // The id answered is the row holding this very report.
    auto row = sql("SELECT job_id, speaker_id FROM reports.error_reports WHERE id = $1",
                   {std::to_string(a->report.id)});
    ASSERT_EQ(row.size(), 1u);
    EXPECT_EQ(row[0][0], param{"job-" + std::to_string(i)});
    EXPECT_EQ(row[0][1], param{i % 2 ? "spk-1" : "spk-2"});
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n - 1));
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{std::to_string(n - 1)});
  // Fewer statements than reports: the inserts were grouped (each statement draws its ids in one
  // go, so the saga rows' creation times show how many distinct commits there were).
  auto commits = sql("SELECT count(DISTINCT created_at) FROM reports.report_saga");
  EXPECT_LT(std::stoi(*commits[0][0]), n - 1);
  // And no statement held more than the batch bound (64 reports).
  auto largest = sql("SELECT max(c) FROM (SELECT count(*) AS c FROM reports.report_saga "
                     "GROUP BY created_at) per_commit");
  EXPECT_LE(std::stoi(*largest[0][0]), 64);
  ASSERT_TRUE(sbm::test::eventually([&] {
    return sql("SELECT count(*) FROM reports.report_saga WHERE step <> 'done'")[0][0] == param{"0"};
  }, 60s));
  EXPECT_EQ(sql("SELECT count(*) FROM verification.schedule")[0][0], param{std::to_string(n - 1)});
  // The sagas' schedule steps were grouped too (a commit's rows share its now()).
  auto scheduled_commits = sql("SELECT count(DISTINCT created_at) FROM verification.schedule");
  EXPECT_LT(std::stoi(*scheduled_commits[0][0]), n - 1);
}

// reports.filing-connections bounds the filing statements running at once: with one, filings
// checked while it waits on a held table all go in the next statement, whatever the pool's size.
TEST_F(ReportSaga, FilingStatementsRunAtOnceAreBoundedByTheFilingBatches) {
  // Filings on connections of their own, as a node has them: 3, yet one statement at once.
  sbm::connections::postgres_settings fpg;
  fpg.name = "postgres-filings";
  fpg.url = database_url;
  fpg.pool_size = 3;
  auto r = settings();
  r.filings = stop_at_end(sbm::connections::spawn_postgres(sys, fpg));
  r.filing_batches = 1;
  auto reports = start(r);
  // The lock is held on connections of its own too, so the speakers' reads on `db` never wait.
  fpg.name = "lock-holder";
  auto holder = stop_at_end(sbm::connections::spawn_postgres(sys, fpg));
  ASSERT_TRUE(sbm::test::hold_table_lock(sys, holder, "reports.error_reports", "SHARE", 4));
  constexpr int n = 12;
  using pending_t = decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}));
  std::vector<pending_t> pending;
  for (int i = 0; i < n; ++i)
    pending.push_back(self->request(reports, 30s, sbm::file_atom::value,
                                    sample(i % 2 ? "spk-1" : "spk-2", "job-b" + std::to_string(i))));
  auto waiting = [&] {
    // pg_stat_activity keeps the first 1 kB of a query: the filing statement's opening.
    return *sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%pg_get_serial_sequence(''reports.error_reports''%'")[0][0];
  };
  ASSERT_TRUE(sbm::test::eventually([&] { return waiting() != "0"; }, 10s));
  EXPECT_EQ(waiting(), "1");
  for (auto& p : pending)
    p.receive([&](report_receipt& x) { EXPECT_EQ(x.outcome, report_receipt::accepted) << x.reason; },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(sql("SELECT count(*) FROM reports.error_reports")[0][0], param{std::to_string(n)});
  // The one statement that waited, then one for all filings checked meanwhile (a commit's rows
  // share its now()); with more statements at once the first ones would each have gone alone.
  EXPECT_EQ(sql("SELECT count(DISTINCT created_at) FROM reports.report_saga")[0][0], param{"2"});
}

TEST_F(ReportSaga, SagasThatWaitForASlotStillRunEveryStepOnceWithTheFiledPattern) {
  // Two slots for forty filings: most sagas wait, and start from the pattern their filing handed
  // over, not from a read of their row.
  auto r = settings();
  r.max_running = 2;
  r.claim = 30s;  // no claim lapses during the test: the poll takes nothing over
  auto reports = start(r);
  constexpr int n = 40;
  std::vector<decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}))> pending;
  for (int i = 0; i < n; ++i)
    pending.push_back(self->request(reports, 30s, sbm::file_atom::value,
                                    sample(i % 2 ? "spk-1" : "spk-2", "job-" + std::to_string(i))));
  std::vector<std::int64_t> ids;
  for (auto& p : pending)
    p.receive([&](report_receipt& rc) { ids.push_back(rc.report.id); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(n));
  for (auto id : ids) ASSERT_TRUE(done_within(id)) << id;
  for (auto id : ids) {
    EXPECT_EQ(probe->upserts_of(id), 1) << id;
    EXPECT_EQ(log_steps(id), (std::vector<std::string>{"store", "index", "notify", "schedule"})) << id;
    EXPECT_EQ(schedule_count(id), "1") << id;
    auto p = probe->get(id);
    ASSERT_TRUE(p) << id;
    const auto job = *sql("SELECT job_id FROM reports.error_reports WHERE id = $1", {std::to_string(id)})[0][0];
    const int i = std::stoi(job.substr(4));
    EXPECT_EQ(p->speaker_id, i % 2 ? "spk-1" : "spk-2") << id;
    EXPECT_EQ(p->pattern_id, id);
    EXPECT_EQ(p->bucket_type, "high_touch");
  }
}

// The index steps of many sagas go to the index in batches; a batch the index refuses as invalid
// is re-sent one pattern per saga, so only the saga whose pattern is refused fails (and retries).
TEST_F(ReportSaga, AnIndexBatchRefusedAsInvalidFailsOnlyTheSagaItsIndexRefuses) {
  auto r = settings();
  r.claim = 30s;  // no claim lapses during the test: the poll takes nothing over
  auto reports = start(r);
  auto poison = sample("spk-1", "job-poison");
  poison.original_text = "refused by the test index";
  probe->refuse_text = poison.original_text;
  constexpr int n = 30;
  std::vector<decltype(self->request(reports, 30s, sbm::file_atom::value, report_submission{}))> pending;
  for (int i = 0; i < n; ++i)
    pending.push_back(self->request(reports, 30s, sbm::file_atom::value,
                                    i == n / 2 ? poison : sample(i % 2 ? "spk-1" : "spk-2", "job-" + std::to_string(i))));
  std::vector<std::int64_t> ids;
  for (auto& p : pending)
    p.receive([&](report_receipt& rc) { ids.push_back(rc.report.id); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(n));
  const auto refused = ids[n / 2];
  for (auto id : ids) {
    if (id == refused) continue;
    ASSERT_TRUE(done_within(id)) << id;
    EXPECT_EQ(probe->upserts_of(id), 1) << id;
    // No failed attempt: a refused batch did not fail the sagas whose patterns were fine.
    EXPECT_EQ(log_steps(id), (std::vector<std::string>{"store", "index", "notify", "schedule"})) << id;
  }
  EXPECT_FALSE(probe->get(refused));
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto row = sql("SELECT step, attempts > 0, last_error FROM reports.report_saga WHERE report_id = $1",
                   {std::to_string(refused)});
    return row.size() == 1 && row[0][0] == param{"index"} && row[0][1] == param{"t"} && row[0][2] &&
           row[0][2]->find("refused (test)") != std::string::npos;
  }));
  std::lock_guard<std::mutex> guard{probe->mutex};
  std::size_t taken = 0;
  for (auto m : probe->messages) taken += m;
  EXPECT_EQ(taken, static_cast<std::size_t>(n - 1));
}

// Saga writes commit without waiting for the flush: one statement alone (one round trip), several
// in a transaction. Whatever else the same connection runs next commits flushed again. Asked one
// at a time, the pool sends every request to the same (first least busy) worker.
TEST_F(ReportSaga, SagaWritesSkipTheFlushWaitAndFlushedWorkAfterThemWaitsForIt) {
  const std::string setting = "SELECT current_setting('synchronous_commit')";
  auto unflushed = [&](std::size_t statements) {
    std::vector<sbm::db_statement> read(statements, sbm::db_statement{setting, {}, -1});
    auto r = ask<sbm::db_results>(db, sbm::transact_atom::value, sbm::db::unflushed(std::move(read)));
    EXPECT_TRUE(r) << sys.render(r.error());
    if (!r) return std::string{};
    EXPECT_EQ(r->results.size(), statements);
    const auto& rows = r->results[statements - 1].rows;
    return rows.size() == 1 && rows[0][0] ? *rows[0][0] : std::string{};
  };
  auto flushed_write = [&] {
    sbm::db_transaction tx;
    tx.statements.push_back({setting, {}, -1});
    auto r = ask<sbm::db_results>(db, sbm::transact_atom::value, tx);
    EXPECT_TRUE(r) << sys.render(r.error());
    return r && r->results.size() == 1 ? *r->results[0].rows.at(0)[0] : std::string{};
  };
  auto query = [&] {
    auto r = ask<sbm::db_rows>(db, sbm::query_atom::value, sbm::db_statement{setting, {}, -1});
    EXPECT_TRUE(r) << sys.render(r.error());
    return r ? *r->rows.at(0)[0] : std::string{};
  };
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(unflushed(1), "off");
    EXPECT_EQ(unflushed(1), "off");
    EXPECT_EQ(query(), "on");
    EXPECT_EQ(unflushed(3), "off");
    EXPECT_EQ(flushed_write(), "on");
    EXPECT_EQ(unflushed(1), "off");
  }
}

TEST_F(ReportSaga, VerificationRequestsAreIdempotentBySourceKey) {
  for (int i = 0; i < 3; ++i) {
    auto ok = ask<bool>(scheduler, sbm::schedule_atom::value,
                        sbm::verification_request{"spk-1", "normal", "report", "report:77", "c1"});
    ASSERT_TRUE(ok) << sys.render(ok.error());
    EXPECT_TRUE(*ok);
  }
  auto listed = ask<sbm::verification_schedule>(scheduler, sbm::list_atom::value,
                                                sbm::schedule_query{"", "spk-1", 10});
  ASSERT_TRUE(listed) << sys.render(listed.error());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].source_key, "report:77");
  EXPECT_EQ(listed->items[0].source_event_id, 0);
  auto bad = ask<bool>(scheduler, sbm::schedule_atom::value,
                       sbm::verification_request{"spk-1", "urgent", "report", "report:78", "c1"});
  EXPECT_EQ(sbm::code_of(bad.error()), errc::invalid_argument);
}

TEST_F(ReportSaga, AVerificationBatchIsStoredWholeAndOnceOrRefusedWhole) {
  auto keys_stored = [&] {
    return *sql("SELECT string_agg(source_key, ',' ORDER BY source_key) FROM verification.schedule")[0][0];
  };
  sbm::verification_request_batch batch;
  for (const char* key : {"report:90", "report:91", "report:90"})
    batch.requests.push_back({"spk-1", "normal", "report", key, "c1"});
  for (int i = 0; i < 2; ++i) {  // a repeated batch, like a key repeated inside one, adds nothing
    auto ok = ask<bool>(scheduler, sbm::schedule_atom::value, batch);
    ASSERT_TRUE(ok) << sys.render(ok.error());
    EXPECT_TRUE(*ok);
  }
  EXPECT_EQ(keys_stored(), "report:90,report:91");

  sbm::verification_request_batch mixed;
  mixed.requests.push_back({"spk-1", "normal", "report", "report:92", "c1"});
  mixed.requests.push_back({"spk-1", "urgent", "report", "report:93", "c1"});
  auto refused = ask<bool>(scheduler, sbm::schedule_atom::value, mixed);
  ASSERT_FALSE(refused);
  EXPECT_EQ(sbm::code_of(refused.error()), errc::invalid_argument);
  EXPECT_EQ(keys_stored(), "report:90,report:91");  // the valid one was not stored either

  sbm::verification_request_batch too_many;
  for (std::size_t i = 0; i <= sbm::max_verification_batch; ++i)
    too_many.requests.push_back({"spk-1", "normal", "report", "report:x" + std::to_string(i), "c1"});
  auto capped = ask<bool>(scheduler, sbm::schedule_atom::value, too_many);
  ASSERT_FALSE(capped);
  EXPECT_EQ(sbm::code_of(capped.error()), errc::invalid_argument);
  too_many.requests.pop_back();  // exactly at the cap is accepted
  auto at_cap = ask<bool>(scheduler, sbm::schedule_atom::value, too_many);
  ASSERT_TRUE(at_cap) << sys.render(at_cap.error());
  EXPECT_EQ(sql("SELECT count(*) FROM verification.schedule")[0][0],
            param{std::to_string(2 + sbm::max_verification_batch)});
}

// While filings arrive the sagas keep one statement in flight (reports.saga-background-share 1):
// the sagas filed while the index holds the first one's pattern wait, and go to it together.
TEST_F(ReportSaga, WhileFilingsArriveTheSagasKeepTheirBackgroundShareAndTheirBatchesGrow) {
  auto held = stop_at_end(sys.spawn(holding_index, held_probe));
  auto r = settings();
  r.patterns = held;
  r.claim = 30s;                  // no claim lapses during the test: the poll takes nothing over
  r.share = {1, 1000};
  r.saga_quiet = std::chrono::hours{1};  // filings count as arriving for the whole test
  auto reports = start(r);
  constexpr int n = 10;
  const auto ids = file_burst(reports, n, "job-share-");
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(n));
  // Every saga runs: each is queued at its index step or in the statement the index holds.
  ASSERT_TRUE(sbm::test::eventually([&] { return gauge(reports, "reports.running-sagas") == std::uint64_t{n}; }));
  EXPECT_EQ(held_probe->batches_now(), (std::vector<std::size_t>{1}));
  self->send(held, sbm::delete_atom::value, std::int64_t{-1});
  ASSERT_TRUE(sbm::test::eventually([&] { return held_probe->batches_now().size() == 2; }));
  EXPECT_EQ(held_probe->batches_now(), (std::vector<std::size_t>{1, n - 1}));
  release_until_done(held, ids);
}

// Past reports.saga-yield-backlog undone sagas, the sagas take their full share though filings
// still arrive: two index statements in flight at once.
TEST_F(ReportSaga, ASagaBacklogOverItsBoundRunsAtTheFullShareWhileFilingsArrive) {
  auto held = stop_at_end(sys.spawn(holding_index, held_probe));
  auto r = settings();
  r.patterns = held;
  r.claim = 30s;
  r.share = {1, 3};
  r.saga_quiet = std::chrono::hours{1};
  auto reports = start(r);
  const auto ids = file_burst(reports, 10, "job-backlog-");
  ASSERT_EQ(ids.size(), 10u);
  ASSERT_TRUE(sbm::test::eventually([&] { return held_probe->held_now() == 2; }));
  release_until_done(held, ids);
}

// Once filings stop (reports.saga-yield-quiet after the last), the sagas run at full speed again
// without waiting for their statement in flight.
TEST_F(ReportSaga, WhenFilingsStopTheSagasTakeTheirFullShareAgain) {
  auto held = stop_at_end(sys.spawn(holding_index, held_probe));
  auto r = settings();
  r.patterns = held;
  r.claim = 30s;
  r.share = {1, 1000};
  r.saga_quiet = 300ms;
  auto reports = start(r);
  const auto ids = file_burst(reports, 10, "job-quiet-");
  ASSERT_EQ(ids.size(), 10u);
  ASSERT_TRUE(sbm::test::eventually([&] { return held_probe->held_now() == 2; }));
  release_until_done(held, ids);
}

// Sagas never make a filing wait or fail: with every saga stuck at its index step, two running and
// three waiting in memory, all forty filings are accepted; the sagas past the memory bound wait in
// PostgreSQL and are all done once the index answers.
TEST_F(ReportSaga, FilingsAreNeverRefusedBecauseOfSagasAndNoSagaIsLost) {
  auto held = stop_at_end(sys.spawn(holding_index, held_probe));
  auto r = settings();
  r.patterns = held;
  r.max_running = 2;
  r.max_waiting = 3;
  r.share = {1, 1};
  auto reports = start(r);
  const auto ids = file_burst(reports, 40, "job-never-");
  ASSERT_EQ(ids.size(), 40u);
  EXPECT_LE(gauge(reports, "reports.waiting-sagas"), 3u);
  release_until_done(held, ids, false);
}

}  // namespace
