// The reports port's contract, run against both adapters: PostgreSQL (the real server, as every
// integration test) and the simulation's in-memory store (tests/sim/). What one adapter does the
// other must do, so a simulation proves something about the node: one write per key, a verdict
// only over the status it read, a session's verdicts once, a saga moved only under its claim.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/reports/notes_retention.hpp"
#include "actors/reports/store.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/reports_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm::reports;
using sbm::errc;
using sbm::request_context;
using verdict = sbm::db::idempotency::verdict;

template <class Backend>
class ReportsStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    tables = std::make_shared<sbm::sim::reports_tables>();
  }

  template <class T, class Op>
  caf::expected<T> run(Op op) {
    store_factory open = make_postgres_store;
    if constexpr (Backend::in_memory) open = sbm::sim::memory_reports_store(this->server.handle, tables);
    return sbm::test::through_port<T, store>(this->sys, this->handle(), open, op);
  }

  static request_context keyed(std::string key, std::string digest = "d1") {
    request_context ctx;
    ctx.principal = "user:qa-1";
    ctx.idempotency_key = std::move(key);
    ctx.request_digest = std::move(digest);
    return ctx;
  }

  static filing_row row(std::string speaker, request_context ctx = {}, std::string client = "c1") {
    filing_row f;
    auto& s = f.sub;
    s.speaker_id = std::move(speaker);
    s.client_id = std::move(client);
    s.job_id = "job-" + s.speaker_id;
    s.original_text = "hydroxyzine";
    s.corrected_text = "hydralazine";
    s.context_text = "started on hydroxyzine 25 mg";
    s.error_categories = {"drug_name", "dosage"};
    s.audio_quality = "good";
    s.speaker_clarity = "clear";
    s.background_noise = "low";
    s.number_of_speakers = 2;
    s.overlapping_speech = true;
    s.actor = "user:qa-1";
    s.ctx = std::move(ctx);
    f.bucket_type = "low_touch";
    f.additional_token = std::string("token-a");
    f.note = "stored, speaker in low_touch";
    return f;
  }

  caf::expected<std::vector<filed>> file(std::vector<filing_row> rows, std::string claimant = "runner-a",
                                         std::chrono::milliseconds claim = 1h) {
    return run<std::vector<filed>>([=](store& st, completion<std::vector<filed>> done) {
      st.file(rows, claim, claimant, {}, done);
    });
  }
  std::int64_t file_one(std::string speaker, std::string claimant = "runner-a", std::chrono::milliseconds claim = 1h) {
    auto out = file({row(std::move(speaker))}, std::move(claimant), claim);
    EXPECT_TRUE(out && out->size() == 1 && out->front().outcome == filed::written);
    return out && !out->empty() ? out->front().id : 0;
  }
  caf::expected<caf::optional<stored_report>> load(std::int64_t id, bool with_log = true) {
    return run<caf::optional<stored_report>>(
      [=](store& st, completion<caf::optional<stored_report>> done) { st.load(id, with_log, done); });
  }
  caf::expected<sbm::db::idempotency::lookup_result> find_key(const request_context& ctx) {
    return run<sbm::db::idempotency::lookup_result>(
      [ctx](store& st, completion<sbm::db::idempotency::lookup_result> done) { st.find_key(ctx, 3600s, done); });
  }
  caf::expected<std::vector<stored_report>> list(sbm::report_query q, std::uint32_t fetch = 10) {
    return run<std::vector<stored_report>>(
      [=](store& st, completion<std::vector<stored_report>> done) { st.list(q, fetch, done); });
  }
  caf::expected<caf::optional<status_read>> read_status(std::int64_t id, const request_context& ctx = {},
                                                        sbm::client_scope scope = {}) {
    return run<caf::optional<status_read>>(
      [=](store& st, completion<caf::optional<status_read>> done) { st.read_status(id, scope, ctx, 3600s, done); });
  }
  caf::expected<verdict_saved> set_status(std::int64_t id, std::string from, std::string to, double weight,
                                          const request_context& ctx = {}) {
    status_write w{id, std::move(from), std::move(to), weight, "status changed"};
    return run<verdict_saved>([=](store& st, completion<verdict_saved> done) { st.set_status(w, 0ms, ctx, done); });
  }
  caf::expected<bool> apply(sbm::verification_verdicts v) {
    return run<bool>([=](store& st, completion<bool> done) { st.apply_verdicts(v, 0ms, done); });
  }
  caf::expected<sbm::verdicts_applied> weights(std::vector<std::int64_t> ids, std::string speaker) {
    return run<sbm::verdicts_applied>(
      [=](store& st, completion<sbm::verdicts_applied> done) { st.weights(ids, speaker, {}, done); });
  }
  caf::expected<caf::optional<saga_position>> claim(std::int64_t id, std::string claimant,
                                                    std::chrono::milliseconds claim = 1h) {
    return run<caf::optional<saga_position>>(
      [=](store& st, completion<caf::optional<saga_position>> done) { st.claim(id, claim, claimant, done); });
  }
  caf::expected<std::vector<std::int64_t>> claim_due(std::string claimant, std::uint32_t limit = 10) {
    return run<std::vector<std::int64_t>>(
      [=](store& st, completion<std::vector<std::int64_t>> done) { st.claim_due(1h, limit, claimant, done); });
  }
  caf::expected<std::vector<std::int64_t>> record(std::vector<step_ack> acks, std::string claimant) {
    return run<std::vector<std::int64_t>>(
      [=](store& st, completion<std::vector<std::int64_t>> done) { st.record_steps(acks, 1h, claimant, done); });
  }
  caf::expected<bool> record_failure(step_failure f, std::string claimant) {
    return run<bool>([=](store& st, completion<bool> done) { st.record_failure(f, claimant, done); });
  }

  static step_ack ack(std::int64_t id, std::int64_t revision, std::string step, std::string next, std::string note) {
    return {id, revision, step, std::move(next), {{step, std::move(note)}}};
  }

  std::shared_ptr<sbm::sim::reports_tables> tables;
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(ReportsStoreContract, backends);

TYPED_TEST(ReportsStoreContract, AFilingWritesTheReportItsSagaItsFirstLogLineAndItsKey) {
  auto out = this->file({this->row("spk-1", this->keyed("k-1")), this->row("spk-2")});
  ASSERT_TRUE(out) << this->sys.render(out.error());
  ASSERT_EQ(out->size(), 2u);
  for (const auto& f : *out) EXPECT_EQ(f.outcome, filed::written);
  EXPECT_NE((*out)[0].id, (*out)[1].id);
  EXPECT_GT((*out)[0].created_at_ms, 0);

  auto got = this->load((*out)[0].id);
  ASSERT_TRUE(got && *got);
  const auto& r = (*got)->report;
  EXPECT_EQ(r.id, (*out)[0].id);
  EXPECT_EQ(r.fields.speaker_id, "spk-1");
  EXPECT_EQ(r.fields.error_categories, (std::vector<std::string>{"drug_name", "dosage"}));
  EXPECT_EQ(r.fields.number_of_speakers, 2);
  EXPECT_TRUE(r.fields.overlapping_speech);
  EXPECT_EQ(r.fields.actor, "user:qa-1");
  EXPECT_EQ(r.bucket_type, "low_touch");
  EXPECT_EQ(r.status, "pending");
  EXPECT_DOUBLE_EQ(r.weight, 0.5);
  EXPECT_EQ(r.created_at_ms, (*out)[0].created_at_ms);
  EXPECT_EQ(r.saga_step, "index");
  EXPECT_TRUE(r.fields.additional_notes.empty());  // the store keeps tokens only
  ASSERT_TRUE((*got)->additional_token);
  EXPECT_EQ(*(*got)->additional_token, "token-a");
  EXPECT_FALSE((*got)->context_token);
  ASSERT_EQ(r.saga_log.size(), 1u);
  EXPECT_EQ(r.saga_log[0].step, "store");
  EXPECT_EQ(r.saga_log[0].note, "stored, speaker in low_touch");

  auto same = this->find_key(this->keyed("k-1"));
  ASSERT_TRUE(same);
  EXPECT_EQ(same->v, verdict::replay);
  EXPECT_EQ(same->stored.answer, std::to_string((*out)[0].id));
  auto other = this->find_key(this->keyed("k-1", "another request"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->v, verdict::reused);
  auto absent = this->find_key(this->keyed("k-2"));
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->v, verdict::absent);

  auto none = this->load(9'999'999);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TYPED_TEST(ReportsStoreContract, AFilingUnderAKeyStoredMeanwhileWritesNothingAndTheOthersInItsBatchStand) {
  auto first = this->file({this->row("spk-1", this->keyed("k-1"))});
  ASSERT_TRUE(first && first->front().outcome == filed::written);
  auto again = this->file({this->row("spk-1", this->keyed("k-1", "a retry")), this->row("spk-2")});
  ASSERT_TRUE(again) << this->sys.render(again.error());
  EXPECT_EQ((*again)[0].outcome, filed::key_taken);
  EXPECT_EQ((*again)[1].outcome, filed::written);
  auto all = this->list({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2u);  // the refused row left no report
  auto kept = this->find_key(this->keyed("k-1"));
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->stored.answer, std::to_string(first->front().id));  // the first answer stays
}

TYPED_TEST(ReportsStoreContract, AListIsNewestFirstFilteredScopedAndPaged) {
  const auto a = this->file_one("spk-1");
  const auto b = this->file_one("spk-2");
  auto c_out = this->file({this->row("spk-1", {}, "c2")});
  ASSERT_TRUE(c_out);
  const auto c = c_out->front().id;
  auto all = this->list({});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].report.id, c);
  EXPECT_EQ((*all)[2].report.id, a);

  sbm::report_query by_speaker;
  by_speaker.speaker_id = "spk-1";
  auto one = this->list(by_speaker);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 2u);

  sbm::report_query scoped;
  scoped.scope = sbm::client_scope{true, {"c1"}};
  auto mine = this->list(scoped);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->size(), 2u);
  EXPECT_EQ((*mine)[0].report.id, b);

  sbm::report_query page;
  page.before_id = b;
  auto older = this->list(page, 1);
  ASSERT_TRUE(older);
  ASSERT_EQ(older->size(), 1u);
  EXPECT_EQ(older->front().report.id, a);

  sbm::report_query other_category;
  other_category.category = "punctuation";
  auto nothing = this->list(other_category);
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->empty());
}

TYPED_TEST(ReportsStoreContract, AVerdictAppliesOnlyOverTheStatusItReadAndRewindsTheSaga) {
  const auto id = this->file_one("spk-1");
  auto read = this->read_status(id);
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->status, "pending");
  EXPECT_DOUBLE_EQ((*read)->weight, 0.5);
  auto hidden = this->read_status(id, {}, sbm::client_scope{true, {"c2"}});
  ASSERT_TRUE(hidden);
  EXPECT_FALSE(*hidden);  // another client's report reads as missing

  auto saved = this->set_status(id, "pending", "rectified", 0.6, this->keyed("v-1"));
  ASSERT_TRUE(saved) << this->sys.render(saved.error());
  EXPECT_EQ(*saved, verdict_saved::done);
  auto raced = this->set_status(id, "pending", "not_rectified", 0.4);
  ASSERT_TRUE(raced);
  EXPECT_EQ(*raced, verdict_saved::status_moved);
  auto key_again = this->set_status(id, "rectified", "not_rectified", 0.5, this->keyed("v-1"));
  ASSERT_TRUE(key_again);
  EXPECT_EQ(*key_again, verdict_saved::key_taken);

  auto now = this->load(id);
  ASSERT_TRUE(now && *now);
  EXPECT_EQ((*now)->report.status, "rectified");
  EXPECT_DOUBLE_EQ((*now)->report.weight, 0.6);
  EXPECT_EQ((*now)->report.saga_log.back().step, "status");
  auto with_key = this->read_status(id, this->keyed("v-1"));
  ASSERT_TRUE(with_key && *with_key);
  EXPECT_EQ((*with_key)->key.v, verdict::replay);

  // Rewound: unclaimed at a new revision, so another runner takes it up at once.
  auto taken = this->claim(id, "runner-b");
  ASSERT_TRUE(taken && *taken);
  EXPECT_EQ((*taken)->step, "index");
  EXPECT_EQ((*taken)->revision, 1);
  EXPECT_EQ((*taken)->pattern.status, "rectified");
}

TYPED_TEST(ReportsStoreContract, ASessionsVerdictsApplyOnceInTenthsAndOnlyToItsSpeakersReports) {
  const auto mine = this->file_one("spk-1");
  const auto theirs = this->file_one("spk-2");
  sbm::verification_verdicts v;
  v.session_id = 41;
  v.speaker_id = "spk-1";
  v.actor = "qa-1";
  v.verdicts = {{mine, "rectified"}, {mine, "rectified"}, {theirs, "rectified"}};
  auto first = this->apply(v);
  ASSERT_TRUE(first) << this->sys.render(first.error());
  EXPECT_TRUE(*first);
  auto second = this->apply(v);
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);  // the same session again changes nothing

  auto w = this->weights({mine, theirs}, "spk-1");
  ASSERT_TRUE(w);
  ASSERT_EQ(w->weights.size(), 1u);
  EXPECT_EQ(w->weights[0].report_id, mine);
  EXPECT_EQ(w->weights[0].status, "rectified");
  EXPECT_DOUBLE_EQ(w->weights[0].weight, 0.7);
  auto other = this->weights({theirs}, "spk-2");
  ASSERT_TRUE(other && other->weights.size() == 1u);
  EXPECT_DOUBLE_EQ(other->weights[0].weight, 0.5);

  v.session_id = 42;
  v.verdicts.assign(6, {mine, "rectified"});
  ASSERT_TRUE(this->apply(v));
  w = this->weights({mine}, "spk-1");
  ASSERT_TRUE(w && w->weights.size() == 1u);
  EXPECT_DOUBLE_EQ(w->weights[0].weight, 1.0);  // clamped
  auto log = this->load(mine);
  ASSERT_TRUE(log && *log);
  EXPECT_EQ((*log)->report.saga_log.back().note, "verification session 42 by qa-1: now rectified, weight 1");
}

TYPED_TEST(ReportsStoreContract, ASagaMovesOnlyUnderItsClaimAtItsRevisionAndStep) {
  const auto id = this->file_one("spk-1", "runner-a");
  auto held_elsewhere = this->claim(id, "runner-b");
  ASSERT_TRUE(held_elsewhere);
  EXPECT_FALSE(*held_elsewhere);  // runner-a's claim is live
  auto mine = this->claim(id, "runner-a");
  ASSERT_TRUE(mine && *mine);
  EXPECT_EQ((*mine)->revision, 0);
  EXPECT_EQ((*mine)->pattern.pattern_id, id);
  EXPECT_EQ((*mine)->pattern.speaker_id, "spk-1");

  auto by_other = this->record({this->ack(id, 0, "index", "notify", "by b")}, "runner-b");
  ASSERT_TRUE(by_other);
  EXPECT_TRUE(by_other->empty());
  auto stale = this->record({this->ack(id, 7, "index", "notify", "stale")}, "runner-a");
  ASSERT_TRUE(stale);
  EXPECT_TRUE(stale->empty());
  auto moved = this->record({this->ack(id, 0, "index", "notify", "indexed")}, "runner-a");
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, std::vector<std::int64_t>{id});
  auto twice = this->record({this->ack(id, 0, "index", "notify", "indexed again")}, "runner-a");
  ASSERT_TRUE(twice);
  EXPECT_TRUE(twice->empty());  // the step moved once

  auto got = this->load(id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->report.saga_step, "notify");
  // Every line is written, moved or not: the step happened.
  EXPECT_EQ((*got)->report.saga_log.size(), 5u);

  ASSERT_TRUE(this->record({this->ack(id, 0, "notify", "done", "told")}, "runner-a"));
  auto finished = this->claim(id, "runner-a");
  ASSERT_TRUE(finished);
  EXPECT_FALSE(*finished);  // a done saga is claimed by nobody
}

TYPED_TEST(ReportsStoreContract, ALapsedClaimIsTakenOverAndItsOldRunnerCannotMoveTheSaga) {
  const auto id = this->file_one("spk-1", "runner-a", 0ms);  // lapses at once
  auto due = this->claim_due("runner-b");
  ASSERT_TRUE(due) << this->sys.render(due.error());
  EXPECT_EQ(*due, std::vector<std::int64_t>{id});
  auto nothing_due = this->claim_due("runner-c");
  ASSERT_TRUE(nothing_due);
  EXPECT_TRUE(nothing_due->empty());  // runner-b holds it for an hour

  step_failure f{id, 0, "index", "the pattern index is down", 1h, std::string("index failed")};
  ASSERT_TRUE(this->record_failure(f, "runner-a"));
  auto got = this->load(id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->report.saga_attempts, 0);  // runner-a no longer holds it
  ASSERT_TRUE(this->record_failure(f, "runner-b"));
  got = this->load(id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->report.saga_attempts, 1);
  EXPECT_EQ((*got)->report.saga_last_error, "the pattern index is down");
  EXPECT_EQ((*got)->report.saga_log.back().step, "retry");

  auto old = this->record({this->ack(id, 0, "index", "notify", "late")}, "runner-a");
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->empty());
}

TYPED_TEST(ReportsStoreContract, JobOwnersAnswerTheJobsInstaNoteHas) {
  if constexpr (TypeParam::in_memory) {
    this->tables->draft_jobs = {{"job-1", "spk-1"}, {"job-2", "spk-2"}};
  } else {
    this->sql("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL)");
    this->sql("INSERT INTO public.draft_jobs VALUES ('job-1', 'spk-1'), ('job-2', 'spk-2')");
  }
  auto owners = this->template run<std::map<std::string, std::string>>(
    [](store& st, completion<std::map<std::string, std::string>> done) {
      st.job_owners({"job-1", "job-3"}, done);
    });
  ASSERT_TRUE(owners) << this->sys.render(owners.error());
  EXPECT_EQ(*owners, (std::map<std::string, std::string>{{"job-1", "spk-1"}}));
  // What PostgreSQL's = ANY answers, the memory store answers too: a job asked twice once, ids
  // compared exactly (case and spaces count), nothing for an empty batch.
  owners = this->template run<std::map<std::string, std::string>>(
    [](store& st, completion<std::map<std::string, std::string>> done) {
      st.job_owners({"job-2", "job-2", "JOB-1", "job-1 ", "job-1"}, done);
    });
  ASSERT_TRUE(owners) << this->sys.render(owners.error());
  EXPECT_EQ(*owners, (std::map<std::string, std::string>{{"job-1", "spk-1"}, {"job-2", "spk-2"}}));
  owners = this->template run<std::map<std::string, std::string>>(
    [](store& st, completion<std::map<std::string, std::string>> done) { st.job_owners({}, done); });
  ASSERT_TRUE(owners) << this->sys.render(owners.error());
  EXPECT_TRUE(owners->empty());
}

// The notes-retention actor purges through the port, so a simulation's store is purged as
// PostgreSQL is: notes of reports past the retention go, in batches, the reports stay.
TYPED_TEST(ReportsStoreContract, TheNotesRetentionPurgesThroughThePort) {
  const auto a = this->file_one("spk-1");
  const auto b = this->file_one("spk-2");
  sbm::reports::reports_settings s;
  s.db = this->handle();
  if constexpr (TypeParam::in_memory) s.store = sbm::sim::memory_reports_store(this->server.handle, this->tables);
  s.db_timeout = 5s;
  s.notes_retention = 1ms;  // both reports are older than that once the clock ticks
  s.notes_purge_interval = 50ms;
  s.notes_purge_batch = 1;
  auto purge = spawn_notes_retention(this->sys, s);
  ASSERT_TRUE(purge);
  auto purged = [&](std::int64_t id) {
    auto got = this->load(id, false);
    return got && *got && !(*got)->additional_token;
  };
  EXPECT_TRUE(sbm::test::eventually([&] { return purged(a) && purged(b); }, 20s));
  caf::anon_send_exit(purge, caf::exit_reason::user_shutdown);
  auto got = this->load(a, false);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->report.fields.speaker_id, "spk-1");  // the report stays
}

TYPED_TEST(ReportsStoreContract, APurgeClearsTheNotesOfOldReportsAndForgetsOldKeys) {
  const auto id = this->file_one("spk-1");
  ASSERT_TRUE(this->file({this->row("spk-2", this->keyed("k-1"))}));
  auto kept = this->template run<std::uint32_t>(
    [](store& st, completion<std::uint32_t> done) { st.purge_notes(1h, 100, done); });
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, 0u);
  // A retention of 0 purges what is older than now, which the report is once the clock ticks.
  std::uint32_t purged = 0;
  for (int i = 0; i < 1000 && purged == 0; ++i) {
    auto n = this->template run<std::uint32_t>(
      [](store& st, completion<std::uint32_t> done) { st.purge_notes(0ms, 1, done); });
    ASSERT_TRUE(n);
    purged = *n;
  }
  EXPECT_EQ(purged, 1u);  // at most the batch
  auto got = this->load(id);
  ASSERT_TRUE(got && *got);
  EXPECT_FALSE((*got)->additional_token);

  ASSERT_TRUE(this->template run<bool>([](store& st, completion<bool> done) { st.purge_keys(3600s, done); }));
  auto still = this->find_key(this->keyed("k-1"));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->v, verdict::replay);
  ASSERT_TRUE(this->template run<bool>([](store& st, completion<bool> done) { st.purge_keys(0s, done); }));
  auto gone = this->find_key(this->keyed("k-1"));
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->v, verdict::absent);
}

}  // namespace
